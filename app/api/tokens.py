"""POST /api/v1/token/issue and /token/revoke."""

from flask import g
from flask.views import MethodView
from sqlalchemy import func

from app.api.blueprint import Blueprint
from app.auth import issue_token, password_matches, secured
from app.extensions import db
from app.http import ApiError, ok
from app.models import User
from app.schemas.common import ErrorEnvelopeSchema, envelope
from app.schemas.inventory import TokenIssueSchema, TokenSchema
from app.timeutil import iso_utc, utcnow

blp = Blueprint("tokens", __name__, url_prefix="/api/v1/token", description="Bearer tokens")


@blp.route("/issue")
class IssueToken(MethodView):
    @blp.arguments(TokenIssueSchema)
    @blp.response(201, envelope(TokenSchema, "TokenEnvelope"))
    @blp.alt_response(401, schema=ErrorEnvelopeSchema, description="Wrong e-mail or password")
    def post(self, credentials):
        """Exchange e-mail and password for a bearer token (shown once)"""
        user = db.session.scalar(
            db.select(User).where(func.lower(User.email) == credentials["email"].lower())
        )
        if user is None or not password_matches(user, credentials["password"]):
            raise ApiError(401, "bad_credentials")
        token, record = issue_token(user)
        return ok({"token": token, "expiresAt": iso_utc(record.expires_at)}, "token_issued", 201)


@blp.route("/revoke")
class RevokeToken(MethodView):
    @secured(blp, "viewer")
    @blp.response(200, envelope(TokenSchema, "TokenEnvelope"))
    def post(self):
        """Revoke the token this request carries"""
        g.token.revoked_at = utcnow()
        db.session.commit()
        return ok({"token": None, "expiresAt": iso_utc(g.token.expires_at)}, "token_revoked")
