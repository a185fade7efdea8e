"""Login throttling (SPEC "Trust: Access"): `POST /api/v1/token/issue` allows at most 5 failed
attempts per account and 20 per client address in 15 minutes; beyond that it answers 429 in
the error envelope with `Retry-After`.

Flask-Limiter keeps the counts in the service's Redis (a moving window each, shared by every
web process). Only failures count: both limits are tested before the password is looked at,
and a hit is deducted only when the answer is 401 (`deduct_when`). So once an account has 5
failures, even the right password is refused until the oldest failure is 15 minutes old; a
success counts for nothing. Unknown e-mails are counted like accounts, so a 429 tells nothing
about which e-mails exist. Redis unreachable: 503, never an unthrottled login.

The client address is `request.remote_addr`. X-Forwarded-For is not trusted: anyone can send
it. Behind a reverse proxy, wrap the app in werkzeug's `ProxyFix` with the number of proxies
you run, or every client shares the proxy's address.
"""

import hashlib
import time

from flask import Flask, Response, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_smorest import Blueprint

from app.http import error_response

ACCOUNT_LIMIT = "5 per 15 minutes"
ADDRESS_LIMIT = "20 per 15 minutes"
WINDOW_SECONDS = 15 * 60


def client_address() -> str:
    return "address:" + (request.remote_addr or "unknown")


def login_account() -> str:
    """The account a login names: its e-mail in any case (hashed: Redis keys stay short)."""
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    if not isinstance(email, str):
        return "account:-"  # refused by validation (422), which counts for nothing
    return "account:" + hashlib.sha256(email.lower().encode()).hexdigest()


def login_failed(response: Response) -> bool:
    return response.status_code == 401


def throttle_failed_logins(app: Flask, login: Blueprint) -> Limiter:
    """Throttle failed logins on the `login` blueprint of `app` (one limiter per app: its
    storage is the app's own REDIS_URL)."""
    limiter = Limiter(
        key_func=client_address,
        storage_uri=app.config["REDIS_URL"],
        storage_options={"socket_connect_timeout": 2, "socket_timeout": 2},
        strategy="moving-window",
        key_prefix="zdm-login",
        fail_on_first_breach=False,  # test both limits: Retry-After waits for the later one
    )
    limiter.init_app(app)
    limiter.limit(ACCOUNT_LIMIT, key_func=login_account, deduct_when=login_failed)(login)
    limiter.limit(ADDRESS_LIMIT, key_func=client_address, deduct_when=login_failed)(login)

    @app.errorhandler(RateLimitExceeded)
    def _too_many_failures(_error):
        breached = [limit.reset_at for limit in limiter.current_limits if limit.breached]
        # reset_at is whole seconds, rounded up: never announce more than the window
        seconds = min(WINDOW_SECONDS, max(1, max(breached, default=0) - int(time.time())))
        response = error_response(429, "too_many_login_attempts", seconds=seconds)
        response.headers["Retry-After"] = str(seconds)
        return response

    return limiter
