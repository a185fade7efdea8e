"""What gunicorn answers by itself, before the app sees a request: an over-long URL (414),
too many or too large headers (431), a request line that is not HTTP (400). Real gunicorn
started as the Procfile starts it (it reads gunicorn.conf.py from the repository's root),
requests written on raw loopback sockets: every answer is the JSON envelope."""

import json
import socket
import subprocess

import pytest

from tests.app.api.helpers import TIMESTAMP
from tests.end_to_end.processes import BIN, ROOT, free_port, service_env, wait_for_http


@pytest.fixture
def web(fresh_database_url, tmp_path, redis_url):
    env = service_env(fresh_database_url, tmp_path, redis_url)
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/v1")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


def exchange(port: int, request: bytes) -> tuple[int, dict, bytes]:
    """Send `request` as it is; read the answer until gunicorn closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        for _ in range(1000):  # bounded: an answer is a few hundred bytes
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, body


def assert_envelope(headers: dict, body: bytes) -> dict:
    assert headers["Content-Type"] == "application/json"
    assert int(headers["Content-Length"]) == len(body)
    payload = json.loads(body)
    assert payload["success"] is False
    assert isinstance(payload["error"], str) and payload["error"]
    assert payload["requestID"] == headers["X-Request-ID"]
    assert payload["requestID"].startswith("req-")
    assert TIMESTAMP.match(payload["timestamp"])
    return payload


def test_an_over_long_url_is_a_414_envelope(web):
    path = b"/api/v1/backups?jobName=" + b"x" * 5000

    status, headers, body = exchange(web, b"GET " + path + b" HTTP/1.1\r\nHost: zdm\r\n\r\n")

    assert status == 414
    assert "4094" in assert_envelope(headers, body)["error"]


def test_a_url_under_the_limit_reaches_the_app(web):
    path = b"/api/v1/nowhere/" + b"x" * 4000

    status, headers, body = exchange(
        web, b"GET " + path + b" HTTP/1.1\r\nHost: zdm\r\nConnection: close\r\n\r\n"
    )

    assert status == 404  # the app's own answer
    assert_envelope(headers, body)


def test_a_too_large_header_is_a_431_envelope(web):
    request = b"GET /api/v1 HTTP/1.1\r\nHost: zdm\r\nX-Large: " + b"y" * 9000 + b"\r\n\r\n"

    status, headers, body = exchange(web, request)

    assert status == 431
    assert_envelope(headers, body)


def test_too_many_headers_are_a_431_envelope(web):
    fields = b"".join(b"X-Field-%d: 1\r\n" % i for i in range(150))

    status, headers, body = exchange(
        web, b"GET /api/v1 HTTP/1.1\r\nHost: zdm\r\n" + fields + b"\r\n"
    )

    assert status == 431
    assert_envelope(headers, body)


@pytest.mark.parametrize(
    "request_line",
    [b"GARBAGE", b"GET /api/v1 HTTP/9.9", b"G\x00T /api/v1 HTTP/1.1", b"GET  HTTP/1.1"],
)
def test_a_bad_request_line_is_a_400_envelope(web, request_line):
    status, headers, body = exchange(web, request_line + b"\r\nHost: zdm\r\n\r\n")

    assert status == 400
    assert_envelope(headers, body)


def test_the_envelope_is_in_the_apis_default_language(web):
    _, headers, body = exchange(web, b"GARBAGE\r\n\r\n")

    assert assert_envelope(headers, body)["error"] == "HTTP 요청 형식이 올바르지 않습니다"
