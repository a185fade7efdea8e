"""Bearer tokens, roles, passwords and who may log in.

Tokens are random, shown once, stored only as their SHA-256, expire, and can be revoked.
Passwords are hashed with Argon2id. A disabled user can neither log in nor use a token.
"""

import functools
import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, g, request
from sqlalchemy import Select, bindparam, func
from sqlalchemy.orm import joinedload

from app.errors import ApiError
from app.extensions import db
from app.models import ApiToken, User
from app.timeutil import utcnow

ROLE_RANK = {"viewer": 0, "operator": 1, "admin": 2}

_hasher = PasswordHasher()
# Verified when the e-mail has no account, so that answer costs one Argon2 verification
# too: the answer time must not tell which e-mails have accounts (SPEC "Trust: Access").
_NO_ACCOUNT_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(email: str, password: str) -> User | None:
    """The enabled user with this e-mail (any case) and password, else None.

    Every answer costs exactly one Argon2 verification: unknown e-mails are checked against
    a hash of nothing, disabled users against their own hash."""
    user = db.session.scalar(db.select(User).where(func.lower(User.email) == email.lower()))
    matches = _password_matches(user.password_hash if user else _NO_ACCOUNT_HASH, password)
    if user is None or user.disabled_at is not None or not matches:
        return None
    return user


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user: User) -> tuple[str, ApiToken]:
    """A new token for `user`: the plain token (shown once) and its stored record."""
    token = "zdm_" + secrets.token_urlsafe(32)
    ttl = timedelta(hours=current_app.config["ZDM_TOKEN_TTL_HOURS"])
    record = ApiToken(user=user, token_hash=token_digest(token), expires_at=utcnow() + ttl)
    db.session.add(record)
    db.session.commit()
    return token, record


def authenticated_token() -> ApiToken:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized")
    record = db.session.scalar(_token_with_its_user(), {"digest": token_digest(token.strip())})
    if record is None or record.revoked_at is not None or record.user.disabled_at is not None:
        raise ApiError(401, "unauthorized")
    if record.expires_at <= utcnow():
        raise ApiError(401, "token_expired")
    return record


@functools.cache
def _token_with_its_user() -> Select:
    """One statement for the token and its user, built once (it is run on every request)."""
    return (
        db.select(ApiToken)
        .options(joinedload(ApiToken.user, innerjoin=True))
        .where(ApiToken.token_hash == bindparam("digest"))
    )


def require_role(role: str):
    """Decorator: a valid bearer token whose user has at least `role`."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            record = authenticated_token()
            if ROLE_RANK[record.user.role] < ROLE_RANK[role]:
                raise ApiError(403, "forbidden", role=role)
            g.token = record
            g.user = record.user
            return view(*args, **kwargs)

        wrapper.required_role = role  # read by app.access (the roles table)
        return wrapper

    return decorator


def secured(blp, role: str):
    """`require_role` plus its place in the OpenAPI document (security, 401, 403)."""
    from app.schemas.common import ErrorEnvelopeSchema

    def decorator(view):
        view = require_role(role)(view)
        view = blp.alt_response(401, schema=ErrorEnvelopeSchema, description="No valid token")(view)
        if role != "viewer":
            view = blp.alt_response(
                403, schema=ErrorEnvelopeSchema, description=f"Role below {role}"
            )(view)
        return blp.doc(security=[{"bearerAuth": []}])(view)

    return decorator
