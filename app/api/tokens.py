"""POST /api/v1/token/issue (log in) and /token/revoke.

Logging in is a blueprint of its own because it carries the login throttling
(`app.login_throttle`): at most 5 failures per account and 20 per address in 15 minutes."""

from flask import g
from flask.views import MethodView

from app.api.blueprint import Blueprint
from app.auth import authenticate, issue_token, secured
from app.extensions import db
from app.http import ApiError, ok
from app.schemas.common import ErrorEnvelopeSchema, envelope
from app.schemas.inventory import TokenIssueSchema, TokenSchema
from app.timeutil import iso_utc, utcnow

login_blp = Blueprint(
    "login",
    __name__,
    url_prefix="/api/v1/token",
    description="Log in: e-mail and password for a bearer token (failed attempts are limited)",
)
blp = Blueprint("tokens", __name__, url_prefix="/api/v1/token", description="Bearer tokens")
TokenEnvelope = envelope(TokenSchema, "TokenEnvelope")


@login_blp.route("/issue")
class IssueToken(MethodView):
    @login_blp.arguments(TokenIssueSchema)
    @login_blp.response(201, TokenEnvelope)
    @login_blp.alt_response(
        401, schema=ErrorEnvelopeSchema, description="Wrong e-mail or password, or user disabled"
    )
    @login_blp.alt_response(
        429,
        schema=ErrorEnvelopeSchema,
        description="5 failures for this account or 20 from this address in 15 minutes",
        headers={
            "Retry-After": {
                "description": "Seconds until an attempt is allowed again",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    )
    @login_blp.alt_response(503, schema=ErrorEnvelopeSchema, description="Redis unavailable")
    def post(self, credentials):
        """Exchange e-mail and password for a bearer token (shown once)"""
        user = authenticate(credentials["email"], credentials["password"])
        if user is None:
            raise ApiError(401, "bad_credentials")
        token, record = issue_token(user)
        return ok({"token": token, "expiresAt": iso_utc(record.expires_at)}, "token_issued", 201)


@blp.route("/revoke")
class RevokeToken(MethodView):
    @secured(blp, "viewer")
    @blp.response(200, TokenEnvelope)
    def post(self):
        """Revoke the token this request carries"""
        g.token.revoked_at = utcnow()
        db.session.commit()
        return ok({"token": None, "expiresAt": iso_utc(g.token.expires_at)}, "token_revoked")
