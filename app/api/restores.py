"""POST /api/v1/restores, GET /api/v1/restores/{id}."""

from flask import g
from flask.views import MethodView

from app.api.blueprint import Blueprint
from app.auth import secured
from app.extensions import db
from app.http import ApiError, ok
from app.models import RecoveryPoint, Restore
from app.schemas.common import ErrorEnvelopeSchema, envelope
from app.schemas.runs import RestoreCreateSchema, RestoreSchema
from app.services import lookup, runs

blp = Blueprint("restores", __name__, url_prefix="/api/v1/restores", description="Restores")
RestoreEnvelope = envelope(RestoreSchema, "RestoreEnvelope")


@blp.route("")
class Restores(MethodView):
    @secured(blp, "operator")
    @blp.arguments(RestoreCreateSchema)
    @blp.response(202, RestoreEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Unknown point or server")
    @blp.alt_response(503, schema=ErrorEnvelopeSchema, description="Broker unavailable")
    def post(self, data):
        """Restore a recovery point through a server's agent"""
        point = db.session.get(RecoveryPoint, data["recoveryPoint"])
        if point is None:
            raise ApiError(404, "point_not_found", ref=data["recoveryPoint"])
        server = lookup.find_server(data["server"])
        restore = runs.request_restore(point, server, data["target"], requested_by=g.user)
        return ok(runs.restore_view(restore), "restore_queued", 202)


@blp.route("/<int(max=2147483647):restore_id>")
class RestoreById(MethodView):
    @secured(blp, "viewer")
    @blp.response(200, RestoreEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such restore")
    def get(self, restore_id):
        """A restore and its progress"""
        restore = db.session.get(Restore, restore_id)
        if restore is None:
            raise ApiError(404, "restore_not_found", ref=restore_id)
        return ok(runs.restore_view(restore))
