"""GET /api/v1/runs/{runId}."""

from flask.views import MethodView

from app.api.blueprint import Blueprint
from app.auth import secured
from app.extensions import db
from app.http import ApiError, ok
from app.models import Run
from app.schemas.common import ErrorEnvelopeSchema, envelope
from app.schemas.runs import RunSchema
from app.services import run_views

blp = Blueprint("runs", __name__, url_prefix="/api/v1/runs", description="Runs of backup jobs")


@blp.route("/<int(max=2147483647):run_id>")
class RunById(MethodView):
    @secured(blp, "viewer")
    @blp.response(200, envelope(RunSchema, "RunEnvelope"))
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such run")
    def get(self, run_id):
        """One run, with its progress and log"""
        run = db.session.get(Run, run_id)
        if run is None:
            raise ApiError(404, "run_not_found", ref=run_id)
        return ok(run_views.run_view(run))
