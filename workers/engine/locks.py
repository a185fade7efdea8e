"""flock(2) helpers. flock locks belong to an open file and the kernel drops them when the
process dies, so a killed backup never leaves a lock behind."""

from __future__ import annotations

import fcntl
import os
import time

from workers.engine import settings
from workers.engine.errors import RepositoryLocked


def acquire(fd: int, kind: int, what: str, timeout: float | None = None) -> None:
    """Take `kind` (fcntl.LOCK_SH or LOCK_EX) on `fd`, waiting at most `timeout` seconds."""
    timeout = settings.LOCK_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise RepositoryLocked(
                    f"Could not lock {what} within {timeout:g} seconds; another operation holds it."
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


def release(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)


def is_held_by_someone(path: str) -> bool:
    """True when some open file holds a lock on `path` (its owner is alive)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
