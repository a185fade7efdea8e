"""POST /api/v1/restores, GET /api/v1/restores/{id}."""

from flask import current_app, g
from flask.views import MethodView

from app.api.blueprint import Blueprint
from app.api.links import links
from app.auth import secured
from app.extensions import db
from app.http import ApiError, ok
from app.models import RecoveryPoint, Restore
from app.schemas.common import ErrorEnvelopeSchema, envelope
from app.schemas.runs import RestoreCreateSchema, RestoreSchema
from app.services import lookup, restore_policy, run_commands, run_views

blp = Blueprint("restores", __name__, url_prefix="/api/v1/restores", description="Restores")
RestoreEnvelope = envelope(RestoreSchema, "RestoreEnvelope")


@blp.route("")
class Restores(MethodView):
    @secured(blp, "operator")
    @blp.arguments(RestoreCreateSchema)
    @blp.response(202, RestoreEnvelope)
    @blp.doc(**links(202, {"restore_id": "/data/id"}, ("GET", "/api/v1/restores/{restore_id}")))
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Unknown point or server")
    @blp.alt_response(
        409,
        schema=ErrorEnvelopeSchema,
        description="The partition to restore in place has a run or restore in progress",
    )
    @blp.alt_response(503, schema=ErrorEnvelopeSchema, description="Broker unavailable")
    def post(self, data):
        """Restore a recovery point through a server's agent

        Where a restore may write is a policy, checked here and again by the agent before it
        writes a byte: a new file or directory under a restore root (operator or admin), or a
        served partition named as the partition, in place (admin, `overwrite: true`, not while
        it is busy). 403 for a role that may not, 422 naming the rule for a forbidden target.
        """
        point = db.session.get(RecoveryPoint, data["recoveryPoint"])
        if point is None:
            raise ApiError(404, "point_not_found", ref=data["recoveryPoint"])
        server = lookup.find_server(data["server"])
        place = restore_policy.service_place(server, current_app.config["ZDM_RESTORE_ROOTS"])
        try:
            restore_policy.check_request(data["target"], data["overwrite"], g.user.role, place)
        except restore_policy.RestoreRefused as refusal:
            raise _api_error(refusal) from None
        restore = run_commands.request_restore(
            point, server, data["target"], overwrite=data["overwrite"], requested_by=g.user
        )
        return ok(run_views.restore_view(restore), "restore_queued", 202)


def _api_error(refusal: restore_policy.RestoreRefused) -> ApiError:
    """A forbidden target is a 422 on the field `target`; a role, 403; a busy partition, 409."""
    detail = (
        {"validationErrors": {"target": [refusal.message()]}} if refusal.status == 422 else None
    )
    return ApiError(refusal.status, refusal.key, detail, **refusal.params)


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
        return ok(run_views.restore_view(restore))
