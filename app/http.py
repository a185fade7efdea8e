"""The envelope every response travels in, the request hooks that feed it, and the
error handlers that turn every failure into it (never an HTML page or a traceback)."""

import logging
import re
import secrets

import redis.exceptions
from flask import Flask, jsonify, request
from flask_smorest import Api
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from app.errors import ApiError, FieldErrors  # noqa: F401  (raised and imported from here too)
from app.extensions import db
from app.i18n import current_language, t, translate_validation_message
from app.timeutil import iso_utc, utcnow

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_BODY_METHODS = {"POST", "PUT", "PATCH"}


def request_id() -> str:
    rid = request.environ.get("zdm.request_id")
    if rid is None:
        given = request.headers.get("X-Request-ID", "")
        rid = given if _REQUEST_ID.match(given) else "req-" + secrets.token_hex(8)
        request.environ["zdm.request_id"] = rid
    return rid


def ok(data, key: str = "ok", status: int = 200, *, success: bool = True, **params):
    """The success envelope, as a (body, status) pair for a flask-smorest view.

    `success=False` is for a partial outcome that still carries data (HTTP 207)."""
    body = {
        "success": success,
        "requestID": request_id(),
        "data": data,
        "message": t(key, **params),
        "timestamp": iso_utc(utcnow()),
    }
    return body, status


def ok_response(data, key: str = "ok", status: int = 200, *, success: bool = True, **params):
    """`ok` as a finished JSON response, which flask-smorest sends as it is instead of
    dumping it through the view's response schema once more. For the busiest views (job
    lists, registration), whose data is built in the schema's shape: a page of jobs costs
    more to re-serialize than to read. tests/api/test_response_schemas.py holds their
    answers to the schemas, so the OpenAPI document stays true."""
    body, status = ok(data, key, status, success=success, **params)
    response = jsonify(body)
    response.status_code = status
    return response


def refusal_with_data(data, key: str, status: int, **params):
    """A refusal that still carries data (POST /backups when no partition could be
    registered): the error envelope (`success: false`, `error`) with the `data` and
    `message` of the success envelope, so every answer of the endpoint has one shape."""
    message = t(key, **params)
    body = {
        "success": False,
        "requestID": request_id(),
        "error": message,
        "data": data,
        "message": message,
        "timestamp": iso_utc(utcnow()),
    }
    response = jsonify(body)
    response.status_code = status
    return response


def error_body(message: str, detail: dict | None = None) -> dict:
    body = {"success": False, "requestID": request_id(), "error": message}
    if detail:
        body["detail"] = detail
    body["timestamp"] = iso_utc(utcnow())
    return body


def error_response(status: int, key: str, detail: dict | None = None, **params):
    response = jsonify(error_body(t(key, **params), detail))
    response.status_code = status
    return response


def flatten_errors(messages, prefix: str = "") -> dict[str, list[str]]:
    """{"schedule": {"description": ["..."]}} -> {"schedule.description": ["..."]}."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            # A nested schema's own errors ("_schema") belong to the nested field itself.
            if key == "_schema" and prefix:
                path = prefix
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_errors(value, path))
    elif isinstance(messages, list | tuple):
        if all(isinstance(m, str) for m in messages):
            flat[prefix or "_schema"] = [translate_validation_message(m) for m in messages]
        else:
            for item in messages:
                for key, value in flatten_errors(item, prefix).items():
                    flat.setdefault(key, []).extend(value)
    else:
        flat[prefix or "_schema"] = [translate_validation_message(str(messages))]
    return flat


def _validation_errors(error: HTTPException) -> dict[str, list[str]]:
    messages = (getattr(error, "data", None) or {}).get("messages", {})
    # webargs groups errors by location ({"json": {...}, "query": {...}}); the path is what matters.
    merged: dict[str, list[str]] = {}
    for location_errors in messages.values():
        merged.update(flatten_errors(location_errors))
    return merged


_STATUS_KEYS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
}


class ZdmApi(Api):
    """flask-smorest's Api, answering every HTTP error in the ZDM envelope."""

    def __init__(self, app: Flask):
        from app.schemas.common import ErrorEnvelopeSchema, MinPropertiesPlugin

        self.ERROR_SCHEMA = ErrorEnvelopeSchema
        super().__init__(app, spec_kwargs={"extra_plugins": [MinPropertiesPlugin()]})
        self.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})

    def handle_http_exception(self, error: HTTPException):
        code = error.code or 500
        if code == 422:
            return error_response(
                422, "validation_failed", {"validationErrors": _validation_errors(error)}
            )
        if code == 400 and "json" in ((getattr(error, "data", None) or {}).get("messages") or {}):
            return error_response(400, "malformed_json")
        if code == 413:
            return error_response(413, "payload_too_large", limit=_body_limit())
        if code == 403:
            return error_response(403, "forbidden", role="?")
        if code == 405:
            response = error_response(405, "method_not_allowed")
            response.headers["Allow"] = ", ".join(getattr(error, "valid_methods", None) or [])
            return response
        key = _STATUS_KEYS.get(code)
        if key is None:
            if code >= 500:
                return error_response(code, "internal_error")
            return jsonify(error_body(error.description or error.name)), code
        return error_response(code, key)


def _body_limit() -> int:
    from flask import current_app

    return current_app.config["MAX_CONTENT_LENGTH"]


def register_request_hooks(app: Flask) -> None:
    @app.before_request
    def _start_request():
        request_id()
        current_language()
        if request.method in _BODY_METHODS:
            length = request.content_length
            if length is not None and length > _body_limit():
                return error_response(413, "payload_too_large", limit=_body_limit())
            has_body = bool(length) or request.headers.get("Transfer-Encoding") == "chunked"
            if has_body and not request.is_json:
                return error_response(415, "unsupported_media_type")
        return None

    @app.after_request
    def _stamp_request_id(response):
        response.headers["X-Request-ID"] = request_id()
        return response

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        if error.status >= 400:
            db.session.rollback()
        return error_response(error.status, error.key, error.detail, **error.params)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def _database_down(error):
        log.warning("database unavailable: %s", error)
        db.session.rollback()
        return error_response(503, "service_unavailable", component=_component("database"))

    @app.errorhandler(DataError)
    def _unstorable_value(error):
        # e.g. a NUL in a path segment on PostgreSQL; SQLite would have stored it
        db.session.rollback()
        return error_response(400, "bad_request")

    @app.errorhandler(RecursionError)
    def _too_deep(error):
        return error_response(400, "malformed_json")

    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    @app.errorhandler(BrokerError)
    def _broker_down(error):
        log.warning("broker unavailable: %s", error)
        return error_response(503, "service_unavailable", component=_component("broker"))

    @app.errorhandler(Exception)
    def _unexpected(error):
        if isinstance(error, HTTPException):
            return app.extensions["zdm_api"].handle_http_exception(error)
        log.exception("unhandled error")
        db.session.rollback()
        return error_response(500, "internal_error")


def _component(name: str) -> str:
    korean = {"database": "데이터베이스", "broker": "메시지 브로커(Redis)"}
    return name if current_language() == "en" else korean[name]
