"""SPEC "Conventions": the envelope, request ids, languages and error statuses."""

import re

import pytest

import config
from app import create_app
from tests.app.api.helpers import SEED_BASIC, TIMESTAMP, assert_error, job_count


def test_generated_request_id_is_req_and_hex(client, auth):
    response = client.get("/api/v1/centers", headers=auth)

    rid = response.get_json()["requestID"]
    assert re.fullmatch(r"req-[0-9a-f]{12,}", rid)
    assert response.headers["X-Request-ID"] == rid


def test_callers_request_id_is_echoed_in_body_and_header(client, auth):
    response = client.get("/api/v1/centers", headers={**auth, "X-Request-ID": "abc-123"})

    assert response.get_json()["requestID"] == "abc-123"
    assert response.headers["X-Request-ID"] == "abc-123"


def test_unusable_request_id_is_replaced(client, auth):
    response = client.get("/api/v1/centers", headers={**auth, "X-Request-ID": "a b<script>"})

    assert response.get_json()["requestID"].startswith("req-")


def test_success_envelope_shape(client, auth):
    payload = client.get("/api/v1/centers", headers=auth).get_json()

    assert list(payload) == ["success", "requestID", "data", "message", "timestamp"]
    assert payload["success"] is True and TIMESTAMP.match(payload["timestamp"])
    assert payload["message"] == "요청이 성공적으로 처리되었습니다"


def test_malformed_json_is_400(client, auth, seed_inventory):
    response = client.post(
        "/api/v1/backups",
        data='{"center": "CENTER-001",',
        headers={**auth, "Content-Type": "application/json"},
    )

    payload = assert_error(response, 400)
    assert "JSON" in payload["error"]
    assert job_count() == 0


def test_wrong_content_type_is_415(client, auth, seed_inventory):
    response = client.post(
        "/api/v1/backups", data="center=CENTER-001", headers={**auth, "Content-Type": "text/plain"}
    )

    assert_error(response, 415)
    assert job_count() == 0


def test_body_over_the_limit_is_413(client, auth, seed_inventory):
    huge = {**SEED_BASIC, "description": "x" * (1024 * 1024 + 10)}

    response = client.post("/api/v1/backups", json=huge, headers=auth)

    payload = assert_error(response, 413)
    assert "1048576" in payload["error"]
    assert job_count() == 0


def test_unknown_route_is_404_in_the_envelope(client, auth):
    response = client.get("/api/v1/nothing-here", headers=auth)

    assert_error(response, 404)
    assert response.mimetype == "application/json"


def test_unknown_route_outside_api_is_also_json(client):
    response = client.get("/robots.txt")

    assert_error(response, 404)


def test_wrong_method_is_405_in_the_envelope(client, auth):
    assert_error(client.patch("/api/v1/centers", json={}, headers=auth), 405)


def test_unknown_query_parameter_is_422(client, auth):
    assert_error(client.get("/api/v1/centers?colour=red", headers=auth), 422, paths=("colour",))


def test_bad_pagination_is_422(client, auth):
    assert_error(client.get("/api/v1/centers?limit=201", headers=auth), 422, paths=("limit",))
    assert_error(client.get("/api/v1/centers?page=0", headers=auth), 422, paths=("page",))


def test_english_error_messages(client):
    response = client.get("/api/v1/centers", headers={"Accept-Language": "en"})

    assert assert_error(response, 401)["error"] == "A valid bearer token is required."


def test_korean_is_the_default_language(client):
    response = client.get("/api/v1/centers")

    assert assert_error(response, 401)["error"] == "인증 토큰이 없거나 유효하지 않습니다"


def _app_with(database_url: str, redis_url: str):
    class Settings(config.Config):
        TESTING = True
        SQLALCHEMY_DATABASE_URI = database_url
        SQLALCHEMY_ENGINE_OPTIONS = {"connect_args": {"connect_timeout": 2}}
        REDIS_URL = redis_url

    return create_app(Settings)


NO_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:1/none"
NO_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def app_without_database(redis_url):
    return _app_with(NO_DATABASE, redis_url)


@pytest.fixture
def app_without_database_or_redis():
    return _app_with(NO_DATABASE, NO_REDIS)


def test_database_unavailable_is_503_in_the_envelope(app_without_database):
    client = app_without_database.test_client()

    response = client.post(
        "/api/v1/token/issue", json={"email": "a@example.com", "password": "whatever1"}
    )

    payload = assert_error(response, 503)
    assert "데이터베이스" in payload["error"]


def test_health_reports_unreachable_components_with_503(app_without_database_or_redis):
    response = app_without_database_or_redis.test_client().get("/api/v1/health")

    payload = assert_error(response, 503)
    assert payload["detail"]["database"].startswith("error")
    assert payload["detail"]["redis"].startswith("error")


def test_health_ok_with_database_and_redis(client):
    response = client.get("/api/v1/health")

    assert response.status_code == 200
    assert response.get_json()["data"] == {"database": "ok", "redis": "ok"}


def test_405_lists_the_allowed_methods_in_allow(client, auth):
    response = client.delete("/api/v1/centers", headers=auth)

    assert_error(response, 405)
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}
    assert response.mimetype == "application/json"


def test_405_on_an_action_lists_post(client, auth):
    response = client.get("/api/v1/token/issue")

    assert_error(response, 405)
    assert set(response.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}


def test_no_made_up_flask_secret(app):
    # the API has no sessions or signed cookies: a default secret would only look like security
    assert app.config["SECRET_KEY"] is None
    assert "SECRET_KEY" not in (config.BASE_DIR / "README.md").read_text()
