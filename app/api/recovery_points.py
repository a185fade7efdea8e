"""GET /api/v1/recovery-points: every recovery point, including those of deleted jobs."""

from flask.views import MethodView

from app.api.blueprint import Blueprint
from app.auth import secured
from app.http import ok
from app.schemas.common import envelope, list_of
from app.schemas.runs import ListedRecoveryPointSchema, RecoveryPointListArgsSchema
from app.services import history

blp = Blueprint(
    "recovery_points",
    __name__,
    url_prefix="/api/v1/recovery-points",
    description="Recovery points of live and deleted jobs",
)


@blp.route("")
class RecoveryPoints(MethodView):
    @secured(blp, "viewer")
    @blp.arguments(RecoveryPointListArgsSchema, location="query")
    @blp.response(
        200,
        envelope(
            list_of(ListedRecoveryPointSchema, "ListedRecoveryPointList"),
            "ListedRecoveryPointListEnvelope",
        ),
    )
    def get(self, args):
        """Recovery points, newest first, filtered by job, server or repository.

        A deleted job's points stay here (unless it was deleted with `purge`) and can be
        restored with POST /restores."""
        items, pagination = history.list_points(args)
        return ok({"items": items, "pagination": pagination})
