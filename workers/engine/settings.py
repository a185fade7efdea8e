"""The engine's settings: every environment variable it reads, and nowhere else.

The engine imports neither Flask nor Celery, so it cannot use the service's `config.py`; this
module is its own, small equivalent.

| variable | default | read | what |
|---|---|---|---|
| `ZDM_MASTER_KEY` | (none) | at each operation that needs it, unless the caller passes `master_key` | 32 bytes as 64 hex characters or base64: wraps the repository keys of encrypted points (`python -m workers.engine generate-key` makes one) |
| `ZDM_ENGINE_LOCK_TIMEOUT` | `3600` | once, when the engine is imported | seconds to wait for a repository lock before `RepositoryLocked` (`prune(..., lock_timeout=...)` overrides it) |
"""

from __future__ import annotations

import os

MASTER_KEY_ENV = "ZDM_MASTER_KEY"
LOCK_TIMEOUT_ENV = "ZDM_ENGINE_LOCK_TIMEOUT"

LOCK_TIMEOUT = float(os.environ.get(LOCK_TIMEOUT_ENV, "3600"))


def master_key_text() -> str | None:
    """The master key as written in `ZDM_MASTER_KEY`, or None when it is unset or empty."""
    return os.environ.get(MASTER_KEY_ENV) or None
