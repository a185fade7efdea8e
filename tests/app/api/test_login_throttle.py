"""POST /api/v1/token/issue: at most 5 failed attempts per account and 20 per client address
in 15 minutes, counted in the suite's real Redis (SPEC "Trust: Access")."""

import pytest

import config
from app import create_app
from tests.app.api.helpers import assert_error
from tests.conftest import PASSWORD, make_user

WINDOW = 15 * 60


def login(client, email="admin@example.com", password=PASSWORD, address="127.0.0.1", **headers):
    return client.post(
        "/api/v1/token/issue",
        json={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
        headers=headers,
    )


def assert_throttled(response) -> int:
    payload = assert_error(response, 429)
    seconds = int(response.headers["Retry-After"])
    assert 0 < seconds <= WINDOW
    assert payload["error"] == f"로그인 실패가 너무 많습니다. {seconds}초 후에 다시 시도하세요"
    return seconds


def test_fifty_wrong_passwords_then_the_right_one_is_refused(client, admin):
    statuses = [login(client, password=f"guess-{n}").status_code for n in range(50)]

    assert statuses == [401] * 5 + [429] * 45
    assert_throttled(login(client))


def test_sixth_failure_of_an_account_is_429_with_retry_after(client, admin):
    for n in range(5):
        assert_error(login(client, password=f"guess-{n}"), 401)

    assert_throttled(login(client, password="guess-5"))


def test_the_account_is_the_e_mail_in_any_case(client, admin):
    for n, email in enumerate(["ADMIN@example.com", "Admin@Example.com", "admin@EXAMPLE.COM"]):
        assert_error(login(client, email=email, password=f"guess-{n}"), 401)
    for n in range(2):
        assert_error(login(client, password=f"more-{n}"), 401)

    assert_throttled(login(client, email="aDmIn@example.com"))


def test_an_account_is_throttled_whatever_address_the_failures_come_from(client, admin):
    for n in range(5):
        assert_error(login(client, password=f"guess-{n}", address=f"127.0.0.{n + 2}"), 401)

    assert_throttled(login(client, address="127.0.0.99"))


def test_unknown_accounts_count_too(client, admin):
    for n in range(5):
        assert_error(login(client, email="ghost@example.com", password=f"guess-{n}"), 401)

    assert_throttled(login(client, email="ghost@example.com", password="guess-5"))
    assert login(client).status_code == 201  # another account from the same address


def test_twenty_one_failures_from_one_address_over_different_accounts(client, admin):
    accounts = ["admin@example.com"] * 4 + [f"nobody{n}@example.com" for n in range(16)]
    for n, email in enumerate(accounts):
        assert_error(login(client, email=email, password=f"guess-{n}", address="127.0.0.7"), 401)

    assert_throttled(login(client, email="someone-new@example.com", address="127.0.0.7"))
    assert_throttled(login(client, address="127.0.0.7"))  # even the right password
    assert login(client, address="127.0.0.8").status_code == 201


def test_another_account_from_another_address_still_logs_in(client, admin):
    make_user("ops@example.com", role="operator")
    for n in range(5):
        assert_error(login(client, password=f"guess-{n}", address="127.0.0.2"), 401)

    assert_throttled(login(client, address="127.0.0.2"))
    assert login(client, email="ops@example.com", address="127.0.0.3").status_code == 201


def test_successes_do_not_count_as_failures(client, admin):
    for _ in range(3):
        assert login(client).status_code == 201
    for n in range(5):
        assert_error(login(client, password=f"guess-{n}"), 401)

    assert_throttled(login(client, password="guess-5"))


def test_malformed_requests_do_not_count(client, admin):
    for _ in range(10):
        assert_error(client.post("/api/v1/token/issue", json={"email": "admin@example.com"}), 422)

    assert login(client).status_code == 201


def test_refusal_in_english(client, admin):
    for n in range(5):
        login(client, password=f"guess-{n}")

    response = login(client, **{"Accept-Language": "en"})

    payload = assert_error(response, 429)
    seconds = int(response.headers["Retry-After"])
    assert payload["error"] == f"Too many failed logins; try again in {seconds} seconds."


def test_failures_are_counted_in_the_services_redis(client, admin, redis_url):
    import redis

    assert_error(login(client, password="wrong-password"), 401)

    keys = redis.Redis.from_url(redis_url).keys("*zdm-login*")
    assert len(keys) == 2  # one count for the account, one for the address


@pytest.fixture
def app_without_redis(app, database_url):
    class NoRedis(config.Config):
        TESTING = True
        SQLALCHEMY_DATABASE_URI = database_url
        REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    return create_app(NoRedis)


def test_redis_down_is_503_never_an_unthrottled_login(app_without_redis, admin):
    response = login(app_without_redis.test_client())

    payload = assert_error(response, 503)
    assert payload["error"] == "메시지 브로커(Redis)에 연결할 수 없습니다. 잠시 후 다시 시도하세요"
