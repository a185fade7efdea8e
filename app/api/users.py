"""POST/GET /api/v1/users (admin only)."""

from flask.views import MethodView
from sqlalchemy.exc import IntegrityError

from app.api.blueprint import Blueprint
from app.auth import hash_password, secured
from app.extensions import db
from app.http import ApiError, ok
from app.models import User
from app.schemas.common import PageArgsSchema, envelope, list_of
from app.schemas.inventory import UserCreateSchema, UserSchema
from app.services.pagination import paginate
from app.timeutil import iso_utc

blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="Users and roles")


def user_view(user: User) -> dict:
    return {
        "id": user.id,
        "email": user.email,
        "role": user.role,
        "createdAt": iso_utc(user.created_at),
    }


def create_user(email: str, password: str, role: str) -> User:
    user = User(email=email.lower(), password_hash=hash_password(password), role=role)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ApiError(409, "user_exists", email=email) from None
    return user


@blp.route("")
class Users(MethodView):
    @secured(blp, "admin")
    @blp.arguments(UserCreateSchema)
    @blp.response(201, envelope(UserSchema, "UserEnvelope"))
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
