"""/api/v1/users (admin only): create, list, show, disable, enable, revoke tokens."""

from flask import g
from flask.views import MethodView

from app.api.blueprint import Blueprint
from app.api.links import links
from app.auth import secured
from app.extensions import db
from app.http import ok
from app.models import User
from app.schemas.common import ErrorEnvelopeSchema, PageArgsSchema, envelope, list_of
from app.schemas.inventory import UserCreateSchema, UserSchema, UserTokensRevokedSchema
from app.services import lookup
from app.services.pagination import paginate
from app.services.users import (
    create_user,
    disable_user,
    enable_user,
    revoke_tokens,
    user_view,
)

__all__ = ["blp", "create_user"]  # create_user: `flask zdm create-user` imports it from here

blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="Users and roles")
UserEnvelope = envelope(UserSchema, "UserEnvelope")
RevokedEnvelope = envelope(UserTokensRevokedSchema, "UserTokensRevokedEnvelope")


@blp.route("")
class Users(MethodView):
    @secured(blp, "admin")
    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserEnvelope)
    @blp.doc(
        **links(
            201,
            {"ref": "/data/id"},
            ("GET", "/api/v1/users/{ref}"),
            ("POST", "/api/v1/users/{ref}/disable"),
            ("POST", "/api/v1/users/{ref}/enable"),
            ("POST", "/api/v1/users/{ref}/revoke-tokens"),
        )
    )
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="A user with that e-mail exists")
    def post(self, data):
        """Create a user with a role: admin, operator or viewer"""
        return ok(user_view(create_user(**data)), "created", 201)

    @secured(blp, "admin")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, envelope(list_of(UserSchema, "UserList"), "UserListEnvelope"))
    def get(self, args):
        """List users"""
        items, pagination = paginate(db.select(User).order_by(User.id), args["page"], args["limit"])
        return ok({"items": [user_view(u) for u in items], "pagination": pagination})


@blp.route("/<ref>")
class UserByRef(MethodView):
    @secured(blp, "admin")
    @blp.response(200, UserEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such user")
    def get(self, ref):
        """One user, by id or e-mail"""
        return ok(user_view(lookup.find_user(ref)))


@blp.route("/<ref>/disable")
class DisableUser(MethodView):
    @secured(blp, "admin")
    @blp.response(200, RevokedEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such user")
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="An admin disabling themself")
    def post(self, ref):
        """Disable a user: no more logins, and every token of theirs stops working at once"""
        user = lookup.find_user(ref)
        revoked = disable_user(user, by=g.user)
        return ok({"user": user_view(user), "revokedTokens": revoked}, "user_disabled")


@blp.route("/<ref>/enable")
class EnableUser(MethodView):
    @secured(blp, "admin")
    @blp.response(200, UserEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such user")
    def post(self, ref):
        """Enable a disabled user again (their old tokens stay revoked)"""
        user = lookup.find_user(ref)
        enable_user(user)
        return ok(user_view(user), "user_enabled")


@blp.route("/<ref>/revoke-tokens")
class RevokeUserTokens(MethodView):
    @secured(blp, "admin")
    @blp.response(200, RevokedEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="No such user")
    def post(self, ref):
        """Revoke every token of a user (the user may log in again)"""
        user = lookup.find_user(ref)
        revoked = revoke_tokens(user)
        return ok(
            {"user": user_view(user), "revokedTokens": revoked}, "tokens_revoked", count=revoked
        )
