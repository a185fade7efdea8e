"""Flower's settings (`celery -A workers flower --conf=workers/flowerconfig.py`).

Flower always sits behind basic auth: `ZDM_FLOWER_USER` (default `admin`) and
`ZDM_FLOWER_PASSWORD`; without a password one is generated once, kept in
`var/flower-password` and printed at start.
"""

import os
import secrets
import sys
from pathlib import Path

_var = Path(os.environ.get("ZDM_VAR_DIR", Path(__file__).resolve().parent.parent / "var"))


def _password() -> str:
    given = os.environ.get("ZDM_FLOWER_PASSWORD")
    if given:
        return given
    stored = _var / "flower-password"
    if not stored.exists():
        _var.mkdir(parents=True, exist_ok=True)
        stored.write_text(secrets.token_urlsafe(18) + "\n")
        stored.chmod(0o600)
    password = stored.read_text().strip()
    print(f"flower: basic auth password in {stored}", file=sys.stderr)
    return password


basic_auth = [f"{os.environ.get('ZDM_FLOWER_USER', 'admin')}:{_password()}"]
address = os.environ.get("ZDM_FLOWER_ADDRESS", "127.0.0.1")
port = int(os.environ.get("ZDM_FLOWER_PORT", 5555))
