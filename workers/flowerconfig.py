"""Flower's settings (`celery -A workers flower --conf=workers/flowerconfig.py`).

Flower always sits behind basic auth: `ZDM_FLOWER_USER` (default `admin`) and
`ZDM_FLOWER_PASSWORD`; without a password one is generated once and kept in
`var/flower-password` (mode 0600, in a directory created 0700), whose path is printed at start.
The variables are read by `config.flower_config()`. The task list shows each task's kwargs
(job id and name) and exception (a failed run's error).
"""

import os
import secrets
import sys
from pathlib import Path

try:
    import config
except ModuleNotFoundError:  # Flower reads this file by path: the project root may be missing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import config

_settings = config.flower_config()


def _password() -> str:
    if _settings.password:
        return _settings.password
    var = config.VAR_DIR
    stored = var / "flower-password"
    var.mkdir(mode=0o700, parents=True, exist_ok=True)
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


# The task list shows each task's arguments (run or restore id, job id and name) and, for a
# failed run, its error; Flower's default list shows neither.
tasks_columns = "name,uuid,state,kwargs,exception,received,started,runtime,worker"
basic_auth = [f"{_settings.user}:{_password()}"]
address = _settings.address
port = _settings.port
