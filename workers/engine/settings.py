"""The engine's settings: every environment variable the engine reads is read here, and only here.

The engine imports nothing of the service (neither Flask, Celery nor `config.py`), so it keeps
its own, small equivalent of `config.py`.

    variable                 default  what
    ZDM_MASTER_KEY           (none)   the master key: 32 bytes as 64 hex characters or base64;
                                      it wraps the repository keys of encrypted points. Read at
                                      each operation that needs it, unless the caller passes
                                      `master_key`. `python -m workers.engine generate-key`
                                      makes one.
    ZDM_ENGINE_LOCK_TIMEOUT  3600     seconds to wait for a repository lock before giving up
                                      with `RepositoryLocked`; read once, when the engine is
                                      imported (`prune(..., lock_timeout=...)` overrides it).
"""

from __future__ import annotations

import os

MASTER_KEY_ENV = "ZDM_MASTER_KEY"
LOCK_TIMEOUT_ENV = "ZDM_ENGINE_LOCK_TIMEOUT"


def _lock_timeout() -> float:
    raw = os.environ.get(LOCK_TIMEOUT_ENV, "").strip() or "3600"
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise ValueError(f"setting {LOCK_TIMEOUT_ENV} must be a number of seconds, got {raw!r}")
    return value


LOCK_TIMEOUT = _lock_timeout()


def master_key_text() -> str | None:
    """The master key as written in `ZDM_MASTER_KEY`, or None when it is unset or empty."""
    return os.environ.get(MASTER_KEY_ENV) or None
