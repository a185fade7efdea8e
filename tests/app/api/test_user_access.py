"""Admins disable and enable users and revoke all of a user's tokens (SPEC "Trust: Access")."""

from app.auth import issue_token
from app.extensions import db
from app.models import ApiToken
from tests.app.api.helpers import assert_error
from tests.conftest import PASSWORD, bearer, make_user

BAD_CREDENTIALS = "이메일 또는 비밀번호가 올바르지 않습니다"


def login(client, email):
    return client.post("/api/v1/token/issue", json={"email": email, "password": PASSWORD})


def test_disabled_users_tokens_stop_at_once_and_it_cannot_log_in(client, auth):
    operator = make_user("ops@example.com", role="operator")
    tokens = [bearer(operator), bearer(operator)]
    assert client.get("/api/v1/centers", headers=tokens[0]).status_code == 200

    response = client.post("/api/v1/users/ops@example.com/disable", headers=auth)

    assert response.status_code == 200
    payload = response.get_json()
    assert payload["data"]["revokedTokens"] == 2
    assert payload["data"]["user"] == {
        "id": operator.id,
        "email": "ops@example.com",
        "role": "operator",
        "disabled": True,
        "createdAt": payload["data"]["user"]["createdAt"],
    }
    assert payload["message"] == "사용자가 비활성화되었고 모든 토큰이 폐기되었습니다"
    for headers in tokens:
        assert_error(client.get("/api/v1/centers", headers=headers), 401)
    refused = assert_error(login(client, "ops@example.com"), 401)
    assert refused["error"] == BAD_CREDENTIALS  # the same answer as a wrong password


def test_a_token_made_for_a_disabled_user_does_not_work(client, auth):
    operator = make_user("ops@example.com", role="operator")
    client.post(f"/api/v1/users/{operator.id}/disable", headers=auth)

    token, _record = issue_token(operator)  # as `flask zdm create-token` would

    assert_error(client.get("/api/v1/centers", headers={"Authorization": f"Bearer {token}"}), 401)


def test_enabled_again_the_user_logs_in_but_old_tokens_stay_revoked(client, auth):
    operator = make_user("ops@example.com", role="operator")
    old = bearer(operator)
    client.post(f"/api/v1/users/{operator.id}/disable", headers=auth)

    response = client.post(f"/api/v1/users/{operator.id}/enable", headers=auth)

    assert response.status_code == 200
    assert response.get_json()["data"]["disabled"] is False
    assert_error(client.get("/api/v1/centers", headers=old), 401)
    token = login(client, "ops@example.com").get_json()["data"]["token"]
    assert (
        client.get("/api/v1/centers", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )


def test_admin_cannot_disable_themself(client, admin, auth):
    payload = assert_error(client.post(f"/api/v1/users/{admin.id}/disable", headers=auth), 409)

    assert payload["error"] == "자기 자신은 비활성화할 수 없습니다"
    assert client.get("/api/v1/users", headers=auth).status_code == 200


def test_revoke_all_tokens_of_a_user(client, auth):
    operator = make_user("ops@example.com", role="operator")
    tokens = [bearer(operator) for _ in range(3)]
    client.post("/api/v1/token/revoke", headers=tokens[0])  # already revoked: not counted

    response = client.post(f"/api/v1/users/{operator.id}/revoke-tokens", headers=auth)

    assert response.status_code == 200
    payload = response.get_json()
    assert payload["data"]["revokedTokens"] == 2
    assert payload["data"]["user"]["disabled"] is False
    assert payload["message"] == "사용자의 토큰 2개가 폐기되었습니다"
    for headers in tokens:
        assert_error(client.get("/api/v1/centers", headers=headers), 401)
    assert db.session.query(ApiToken).filter(ApiToken.revoked_at.is_(None)).count() == 1  # admin's
    assert login(client, "ops@example.com").status_code == 201  # not disabled: may log in


def test_users_list_and_view_show_disabled(client, auth):
    operator = make_user("ops@example.com", role="operator")
    client.post(f"/api/v1/users/{operator.id}/disable", headers=auth)

    listed = client.get("/api/v1/users", headers=auth).get_json()["data"]["items"]
    shown = client.get(f"/api/v1/users/{operator.id}", headers=auth).get_json()["data"]

    assert [(u["email"], u["disabled"]) for u in listed] == [
        ("admin@example.com", False),
        ("ops@example.com", True),
    ]
    assert shown["disabled"] is True


def test_only_admins_manage_users(client):
    operator = make_user("ops@example.com", role="operator")
    viewer = make_user("viewer@example.com", role="viewer")
    headers = bearer(operator)

    for action in ("disable", "enable", "revoke-tokens"):
        assert_error(client.post(f"/api/v1/users/{viewer.id}/{action}", headers=headers), 403)
    assert client.get("/api/v1/centers", headers=bearer(viewer)).status_code == 200


def test_unknown_user_is_404(client, auth):
    payload = assert_error(client.post("/api/v1/users/999/disable", headers=auth), 404)

    assert payload["error"] == "사용자 '999'을(를) 찾을 수 없습니다"
