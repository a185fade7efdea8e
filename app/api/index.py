"""Where a newcomer lands: `/` leads to the API docs, `/api/v1` answers an index of links,
and `/favicon.ico` is Swagger UI's icon (a browser asks for it on every page)."""

from flask import Flask, redirect, send_from_directory
from flask.views import MethodView
from marshmallow import fields

from app.api.blueprint import Blueprint
from app.http import ok
from app.schemas.common import StrictSchema, envelope

blp = Blueprint("index", __name__, url_prefix="/api/v1", description="Where to start")

LINKS = {
    "docs": "/api/v1/docs",
    "openapi": "/api/v1/openapi.json",
    "health": "/api/v1/health",
    "metrics": "/api/v1/metrics",
}


class IndexLinksSchema(StrictSchema):
    docs = fields.String(metadata={"description": "The interactive API documentation"})
    openapi = fields.String(metadata={"description": "The OpenAPI document"})
    health = fields.String(metadata={"description": "Reachability of database and Redis"})
    metrics = fields.String(metadata={"description": "Prometheus metrics (token needed)"})


class IndexSchema(StrictSchema):
    name = fields.String()
    version = fields.String()
    links = fields.Nested(IndexLinksSchema)


@blp.route("", strict_slashes=False)
class Index(MethodView):
    @blp.response(200, envelope(IndexSchema, "IndexEnvelope"))
    def get(self):
        """Links to the docs, the OpenAPI document, health and metrics (no token needed)"""
        return ok({"name": "ZDM Backup API", "version": "v1", "links": LINKS})


def register_landing_routes(app: Flask, swagger_ui_files: str) -> None:
    @app.get("/")
    def _landing():
        return redirect(LINKS["docs"], code=302)

    @app.get("/favicon.ico")
    def _favicon():
        return send_from_directory(swagger_ui_files, "favicon-32x32.png", mimetype="image/png")
