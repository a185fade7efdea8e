"""Tokens, roles and users (SPEC "Conventions: Auth" and "Users and tokens")."""

import hashlib
from datetime import timedelta

from app.extensions import db
from app.models import ApiToken, User
from app.timeutil import utcnow
from tests.app.api.helpers import assert_error
from tests.conftest import PASSWORD, bearer, make_user


def issue(client, email="admin@example.com", password=PASSWORD):
    return client.post("/api/v1/token/issue", json={"email": email, "password": password})


def test_issue_token_with_password(client, admin):
    response = issue(client)

    assert response.status_code == 201
    data = response.get_json()["data"]
    assert data["token"].startswith("zdm_") and len(data["token"]) > 40
    assert (
        client.get(
            "/api/v1/centers", headers={"Authorization": f"Bearer {data['token']}"}
        ).status_code
        == 200
    )


def test_token_is_stored_only_as_its_hash(client, admin):
    token = issue(client).get_json()["data"]["token"]

    stored = db.session.scalars(db.select(ApiToken.token_hash)).all()
    assert token not in stored
    assert hashlib.sha256(token.encode()).hexdigest() in stored


def test_token_expires_after_24_hours_by_default(client, admin):
    issue(client)

    record = db.session.scalar(db.select(ApiToken))
    assert timedelta(hours=23, minutes=59) < record.expires_at - utcnow() <= timedelta(hours=24)


def test_wrong_password_is_401(client, admin):
    assert_error(issue(client, password="not the password"), 401)
    assert_error(issue(client, email="ghost@example.com"), 401)


def test_email_is_case_insensitive(client, admin):
    assert issue(client, email="Admin@Example.COM").status_code == 201


def test_expired_token_is_401(client, admin):
    headers = bearer(admin)
    db.session.scalar(db.select(ApiToken)).expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()

    payload = assert_error(client.get("/api/v1/centers", headers=headers), 401)
    assert "만료" in payload["error"]


def test_revoked_token_is_401(client, admin):
    headers = bearer(admin)

    assert client.post("/api/v1/token/revoke", headers=headers).status_code == 200

    assert_error(client.get("/api/v1/centers", headers=headers), 401)


def test_garbage_tokens_are_401(client, admin):
    for header in ["Bearer", "Bearer nope", "Basic YWRtaW46cGFzcw==", "zdm_abc"]:
        assert_error(client.get("/api/v1/centers", headers={"Authorization": header}), 401)


def test_viewer_reads_but_may_not_write(client):
    viewer = bearer(make_user("viewer@example.com", role="viewer"))

    assert client.get("/api/v1/centers", headers=viewer).status_code == 200
    assert_error(client.post("/api/v1/centers", json={"name": "C"}, headers=viewer), 403)


def test_operator_may_not_manage_users_or_inventory(client):
    operator = bearer(make_user("ops@example.com", role="operator"))

    assert_error(client.get("/api/v1/users", headers=operator), 403)
    assert_error(client.post("/api/v1/centers", json={"name": "C"}, headers=operator), 403)


def test_admin_creates_and_lists_users(client, auth):
    response = client.post(
        "/api/v1/users",
        json={"email": "ops@example.com", "password": "s3cret-pass", "role": "operator"},
        headers=auth,
    )

    assert response.status_code == 201
    assert "password" not in response.get_json()["data"]
    listed = client.get("/api/v1/users", headers=auth).get_json()["data"]
    assert [u["email"] for u in listed["items"]] == ["admin@example.com", "ops@example.com"]
    assert issue(client, "ops@example.com", "s3cret-pass").status_code == 201


def test_duplicate_user_is_409(client, auth):
    data = {"email": "admin@example.com", "password": "s3cret-pass", "role": "viewer"}

    assert_error(client.post("/api/v1/users", json=data, headers=auth), 409)
    assert db.session.query(User).count() == 1


def test_user_validation(client, auth):
    data = {"email": "not-an-email", "password": "short", "role": "root"}

    assert_error(
        client.post("/api/v1/users", json=data, headers=auth),
        422,
        paths=("email", "password", "role"),
    )
