"""GET /api/v1/metrics: Prometheus metrics (app/services/metrics.py).

Who may read them: any user token of role viewer or above, or the long-lived
`ZDM_METRICS_TOKEN` meant for Prometheus's `authorization` setting (docs/decisions.md)."""

import functools
import hashlib
import hmac

from flask import Response, current_app, request
from flask.views import MethodView

from app.api.blueprint import Blueprint
from app.auth import require_role
from app.schemas.common import ErrorEnvelopeSchema
from app.services.metrics import CONTENT_TYPE, exposition

blp = Blueprint("metrics", __name__, url_prefix="/api/v1/metrics", description="Monitoring")


def _is_metrics_token() -> bool:
    configured = current_app.config["ZDM_METRICS_TOKEN"]
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not configured or scheme.lower() != "bearer" or not given.strip():
        return False
    digest = hashlib.sha256  # compare digests: equal length, constant time
    return hmac.compare_digest(
        digest(given.strip().encode()).digest(), digest(configured.encode()).digest()
    )


def metrics_token_or(role: str):
    """`require_role(role)`, unless the request carries the metrics token."""

    def decorator(view):
        checked = require_role(role)(view)

        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if _is_metrics_token():
                return view(*args, **kwargs)
            return checked(*args, **kwargs)

        wrapper.required_role = role
        return wrapper

    return decorator


@blp.route("")
class Metrics(MethodView):
    @blp.alt_response(401, schema=ErrorEnvelopeSchema, description="No valid token")
    @blp.doc(security=[{"bearerAuth": []}])
    @metrics_token_or("viewer")
    @blp.doc(
        responses={
            "200": {
                "description": "Prometheus text exposition format 0.0.4",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        }
    )
    def get(self):
        """Metrics for Prometheus: jobs by status and health, runs by state, run durations,
        bytes written, last success per job, agents online (a viewer token, or
        `ZDM_METRICS_TOKEN`)"""
        return Response(exposition(), status=200, content_type=CONTENT_TYPE)
