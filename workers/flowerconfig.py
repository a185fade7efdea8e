"""Flower's settings (`celery -A workers flower --conf=workers/flowerconfig.py`).

Flower always sits behind basic auth: `ZDM_FLOWER_USER` (default `admin`) and
`ZDM_FLOWER_PASSWORD`; without a password one is generated once and kept in
`var/flower-password` (mode 0600, in a directory created 0700), whose path is printed at start.
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
    _var.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:  # created 0600 from its first byte: never readable by others, not even briefly
        fd = os.open(stored, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if stored.stat().st_mode & 0o077:
            stored.chmod(0o600)  # kept by an older version with looser permissions
    else:
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(18) + "\n")
    password = stored.read_text().strip()
    print(f"flower: basic auth password in {stored}", file=sys.stderr)
    return password


basic_auth = [f"{os.environ.get('ZDM_FLOWER_USER', 'admin')}:{_password()}"]
address = os.environ.get("ZDM_FLOWER_ADDRESS", "127.0.0.1")
port = int(os.environ.get("ZDM_FLOWER_PORT", 5555))
