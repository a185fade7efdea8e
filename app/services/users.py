"""Users: creation, how they are shown, and what an admin may do to one (disable, enable,
revoke every token)."""

from sqlalchemy.exc import IntegrityError

from app.auth import hash_password
from app.errors import ApiError
from app.extensions import db
from app.models import ApiToken, User
from app.timeutil import iso_utc, utcnow


def user_view(user: User) -> dict:
    return {
        "id": user.id,
        "email": user.email,
        "role": user.role,
        "disabled": user.disabled_at is not None,
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


def revoke_tokens(user: User) -> int:
    """Revoke every live token of `user`; returns how many were revoked."""
    now = utcnow()
    tokens = db.session.scalars(
        db.select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ).all()
    for token in tokens:
        token.revoked_at = now
    db.session.commit()
    return len(tokens)


def disable_user(user: User, by: User) -> int:
    """Lock `user` out: no login, and every token revoked (so enabling the user again does
    not bring a leaked token back). Returns how many tokens were revoked. An admin cannot
    disable themself: the service would risk having no admin left."""
    if user.id == by.id:
        raise ApiError(409, "cannot_disable_self")
    if user.disabled_at is None:
        user.disabled_at = utcnow()
    return revoke_tokens(user)


def enable_user(user: User) -> None:
    user.disabled_at = None
    db.session.commit()
