"""GET /api/v1/health: is the database reachable, is Redis reachable."""

import redis
from flask import current_app
from flask.views import MethodView
from sqlalchemy import text

from app.api.blueprint import Blueprint
from app.extensions import db
from app.http import ApiError, ok
from app.schemas.common import ErrorEnvelopeSchema, envelope
from app.schemas.inventory import HealthSchema

blp = Blueprint("health", __name__, url_prefix="/api/v1/health", description="Service health")


def component_states() -> dict:
    states = {}
    try:
        db.session.execute(text("SELECT 1"))
        states["database"] = "ok"
    except Exception as exc:  # any failure to answer means unreachable
        db.session.rollback()
        states["database"] = f"error: {type(exc).__name__}"
    try:
        client = redis.Redis.from_url(
            current_app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=2
        )
        client.ping()
        states["redis"] = "ok"
    except Exception as exc:
        states["redis"] = f"error: {type(exc).__name__}"
    return states


@blp.route("")
class Health(MethodView):
    @blp.response(200, envelope(HealthSchema, "HealthEnvelope"))
    @blp.alt_response(503, schema=ErrorEnvelopeSchema, description="A component is down")
    def get(self):
        """Reachability of the database and of Redis (no token needed)"""
        states = component_states()
        if all(v == "ok" for v in states.values()):
            return ok(states, "healthy")
        raise ApiError(503, "unhealthy", states)
