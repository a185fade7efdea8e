"""POST /api/v1/token/issue answers as slowly for an unknown e-mail as for a known one with a
wrong password: both cost one Argon2 verification (SPEC "Trust: Access")."""

import statistics
import time

from tests.conftest import make_user

ATTEMPTS = 20


def timed_login(client, email: str, address: str) -> float:
    started = time.perf_counter()
    response = client.post(
        "/api/v1/token/issue",
        json={"email": email, "password": "not the password"},
        environ_base={"REMOTE_ADDR": address},
    )
    elapsed = time.perf_counter() - started
    assert response.status_code == 401, response.get_data(as_text=True)
    return elapsed


def test_unknown_e_mail_takes_as_long_as_a_wrong_password(client, app):
    for n in range(ATTEMPTS):
        make_user(f"user{n}@example.com", role="viewer")
    known, unknown = [], []

    # interleaved, each account and address once, so neither throttling nor a change in the
    # machine's load favours one side
    for n in range(ATTEMPTS):
        known.append(timed_login(client, f"user{n}@example.com", f"127.0.1.{n + 1}"))
        unknown.append(timed_login(client, f"nobody{n}@example.com", f"127.0.2.{n + 1}"))

    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 < ratio < 2, (
        f"unknown {statistics.median(unknown):.4f}s, known {statistics.median(known):.4f}s"
    )


def test_a_disabled_user_takes_as_long_as_a_wrong_password(client, app):
    from app.extensions import db
    from app.timeutil import utcnow

    attempts = ATTEMPTS // 2
    users = [make_user(f"user{n}@example.com", role="viewer") for n in range(2 * attempts)]
    for user in users[attempts:]:
        user.disabled_at = utcnow()
    db.session.commit()
    enabled, disabled = [], []

    for n in range(attempts):
        enabled.append(timed_login(client, f"user{n}@example.com", f"127.0.3.{n + 1}"))
        disabled.append(timed_login(client, f"user{n + attempts}@example.com", f"127.0.4.{n + 1}"))

    ratio = statistics.median(disabled) / statistics.median(enabled)
    assert 0.5 < ratio < 2
