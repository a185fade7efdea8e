"""gunicorn's settings for the web process.

`gunicorn wsgi:app` (the Procfile's `web`) reads this file from the directory it starts in,
the repository's root. The bind address and the worker class and count stay on the command
line. What this file adds:

- the request limits, stated: a request line (method, URL, version) of at most 4094 bytes,
  at most 100 header fields of at most 8190 bytes each (gunicorn's defaults);
- no control socket (below);
- gunicorn's own answers in the ZDM envelope. gunicorn answers some requests before the app
  sees them: a request line over the limit (414), too many or too large headers (431),
  something that is not HTTP/1.x (400), a transfer coding it does not know (501). Those
  answers are JSON in the envelope too (`success: false`, `requestID`, `error`,
  `timestamp`, and the `X-Request-ID` header), with the message in Korean, the API's
  default language: gunicorn has not read an `Accept-Language` it could trust.

tests/end_to_end/test_gunicorn_limits.py sends such requests over raw sockets.
"""

import json
import os
import secrets
import sys

from gunicorn import util

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # `app`, before gunicorn adds it

from app.i18n import MESSAGES  # noqa: E402
from app.timeutil import iso_utc, utcnow  # noqa: E402

limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190

# gunicorn 27's control socket (for `gunicornc`) is off: every gunicorn of a user shares its
# default path (~/.gunicorn/gunicorn.ctl), so a second service on the host, or a test run
# beside one, would take the first one's. ZDM does not use it; to use it, set this to False
# and give each instance its own `--control-socket PATH`.
control_socket_disable = True

_MESSAGE_OF_STATUS = {
    414: ("uri_too_long", {"limit": limit_request_line}),
    431: ("headers_too_large", {"count": limit_request_fields, "size": limit_request_field_size}),
    500: ("internal_error", {}),
    501: ("not_implemented", {}),
}


def envelope_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's `util.write_error`, answering in the envelope instead of an HTML page."""
    key, params = _MESSAGE_OF_STATUS.get(status_int, ("malformed_request", {}))
    korean, _english = MESSAGES[key]
    request_id = "req-" + secrets.token_hex(8)
    body = json.dumps(
        {
            "success": False,
            "requestID": request_id,
            "error": korean.format(**params),
            "timestamp": iso_utc(utcnow()),
        },
        ensure_ascii=False,
        separators=(",", ":"),  # as the app's own answers
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Request-ID: {request_id}\r\n"
        "\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


# gunicorn's workers call `util.write_error` for each answer of their own (workers/base.py,
# `handle_error`); this file runs in the master before it forks them.
util.write_error = envelope_error
