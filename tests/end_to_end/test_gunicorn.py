"""The service as the README starts it (gunicorn wsgi:app), answering the seed's curl examples."""

import json
import subprocess

import pytest
import requests

from tests.app.api.helpers import (
    SEED_ADVANCED,
    SEED_BASIC,
    SEED_BASIC_ANSWER_DATA,
    SEED_SUCCESS_MESSAGE,
)
from tests.end_to_end.processes import BIN, ROOT, flask_cli, free_port, service_env, wait_for_http


@pytest.fixture
def service(fresh_database_url, tmp_path, redis_url):
    env = service_env(fresh_database_url, tmp_path, redis_url, ZDM_PASSWORD="s3cret-pass")
    env["HOME"] = str(tmp_path / "home")  # where gunicorn 27 would put its control socket
    assert flask_cli(env, "zdm", "init").returncode == 0
    assert (
        flask_cli(env, "zdm", "create-user", "admin@example.com", "--role", "admin").returncode == 0
    )
    token = flask_cli(env, "zdm", "create-token", "admin@example.com").stdout.strip()
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base + "/api/v1/health")
        # no control socket at the path every gunicorn of this user would share
        assert not (tmp_path / "home" / ".gunicorn").exists()
        yield base, {"Authorization": f"Bearer {token}"}
    finally:
        process.terminate()
        process.wait(timeout=20)


def curl(base, token_header, body) -> tuple[int, dict]:
    """The seed's curl command, with the seed's headers."""
    result = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", "-X", "POST", f"{base}/api/v1/backups",
         "-H", token_header, "-H", "Content-Type: application/json", "-d", json.dumps(body)],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    payload, status = result.stdout.rsplit("\n", 1)
    return int(status), json.loads(payload)


def test_seed_examples_through_gunicorn(service):
    base, auth = service
    for resource, data in [
        ("centers", {"name": "CENTER-001"}),
        ("servers", {"name": "web-server-01", "center": "CENTER-001",
                     "partitions": [{"name": "/dev/sda1", "kind": "block"}, {"name": "/dev/sda2", "kind": "block"}]}),
        ("repositories", {"center": "CENTER-001", "type": "local", "path": "/backup/storage"}),
    ]:  # fmt: skip
        assert (
            requests.post(
                f"{base}/api/v1/{resource}", json=data, headers=auth, timeout=10
            ).status_code
            == 201
        )

    status, payload = curl(base, f"Authorization: {auth['Authorization']}", SEED_BASIC)

    assert status == 201
    assert payload["success"] is True and payload["message"] == SEED_SUCCESS_MESSAGE
    result = payload["data"]["results"][0]
    assert {k: result[k] for k in SEED_BASIC_ANSWER_DATA["results"][0]} == SEED_BASIC_ANSWER_DATA[
        "results"
    ][0]
    assert payload["data"]["summary"] == SEED_BASIC_ANSWER_DATA["summary"]

    status, payload = curl(base, f"Authorization: {auth['Authorization']}", SEED_ADVANCED)

    assert status == 201
    assert payload["data"]["summary"] == {"total": 2, "successful": 2, "failed": 0}
    assert [r["schedule"]["advanced"] for r in payload["data"]["results"]] == [
        "hourly at minute 0"
    ] * 2


def test_errors_through_gunicorn_are_envelopes(service):
    base, auth = service

    not_json = requests.post(
        f"{base}/api/v1/backups",
        data="{",
        headers={**auth, "Content-Type": "application/json"},
        timeout=10,
    )
    too_big = requests.post(
        f"{base}/api/v1/backups",
        data=b"x" * (2 * 1024 * 1024),
        headers={**auth, "Content-Type": "application/json"},
        timeout=10,
    )
    missing = requests.get(f"{base}/nowhere", timeout=10)

    assert (not_json.status_code, too_big.status_code, missing.status_code) == (400, 413, 404)
    for response in (not_json, too_big, missing):
        assert (
            response.json()["success"] is False
            and response.headers["Content-Type"] == "application/json"
        )
