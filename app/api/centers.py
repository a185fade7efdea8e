"""POST/GET /api/v1/centers, GET /api/v1/centers/{idOrName}."""

from flask.views import MethodView

from app.api.blueprint import Blueprint
from app.api.links import links
from app.auth import secured
from app.extensions import db
from app.http import ok
from app.models import Center
from app.schemas.common import ErrorEnvelopeSchema, PageArgsSchema, envelope, list_of
from app.schemas.inventory import CenterCreateSchema, CenterSchema
from app.services import inventory, lookup
from app.services.pagination import paginate

blp = Blueprint("centers", __name__, url_prefix="/api/v1/centers", description="Data centers")
CenterEnvelope = envelope(CenterSchema, "CenterEnvelope")


@blp.route("")
class Centers(MethodView):
    @secured(blp, "admin")
    @blp.arguments(CenterCreateSchema)
    @blp.response(201, CenterEnvelope)
    @blp.doc(**links(201, {"ref": "/data/id"}, ("GET", "/api/v1/centers/{ref}")))
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="A center of that name exists")
    def post(self, data):
        """Create a center"""
        return ok(inventory.center_view(inventory.create_center(data)), "created", 201)

    @secured(blp, "viewer")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, envelope(list_of(CenterSchema, "CenterList"), "CenterListEnvelope"))
    def get(self, args):
        """List centers"""
        query = db.select(Center).order_by(Center.id)
        items, pagination = paginate(query, args["page"], args["limit"])
        return ok({"items": [inventory.center_view(c) for c in items], "pagination": pagination})


@blp.route("/<ref>")
class CenterByRef(MethodView):
    @secured(blp, "viewer")
    @blp.response(200, CenterEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such center")
    def get(self, ref):
        """One center, by id or name"""
        return ok(inventory.center_view(lookup.find_center(ref)))
