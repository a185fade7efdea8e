"""The locks: flock(2) helpers and the repository-wide lock built on them.

flock locks belong to an open file and the kernel drops them when the process dies, so a killed
backup never leaves a lock behind. See docs/repository-format.md, "Locks and garbage
collection".
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

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


def try_exclusive(fd: int) -> bool:
    """Lock `fd` exclusively unless someone holds a lock on it: then False, without waiting."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def create_locked(path: Path) -> int:
    """Create `path` (it must not exist) and lock it exclusively; returns the descriptor that
    holds the lock for as long as it stays open (an operation's liveness lock)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def is_held_by_someone(path: str) -> bool:
    """True when some open file holds a lock on `path` (its owner is alive)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        return not try_exclusive(fd)
    finally:
        os.close(fd)


class RepositoryLock:
    """The repository-wide lock: shared by claims and publications, exclusive for collection.

    `turnstile` gives the exclusive side priority: a collector holds it while it waits, so new
    shared holders queue behind it instead of starving it.
    """

    def __init__(self, root: Path):
        self._lock_fd = os.open(root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        self._turnstile_fd = os.open(root / "turnstile", os.O_RDWR | os.O_CREAT, 0o600)
        self._holds_turnstile = False

    def shared(self, timeout: float | None = None) -> None:
        acquire(self._turnstile_fd, fcntl.LOCK_EX, "the repository", timeout)
        try:
            acquire(self._lock_fd, fcntl.LOCK_SH, "the repository", timeout)
        finally:
            release(self._turnstile_fd)

    def exclusive(self, timeout: float | None = None) -> None:
        acquire(self._turnstile_fd, fcntl.LOCK_EX, "the repository", timeout)
        self._holds_turnstile = True
        try:
            acquire(self._lock_fd, fcntl.LOCK_EX, "the repository", timeout)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        release(self._lock_fd)
        if self._holds_turnstile:
            release(self._turnstile_fd)
            self._holds_turnstile = False

    @contextlib.contextmanager
    def held(self, exclusive: bool = False, timeout: float | None = None):
        self.exclusive(timeout) if exclusive else self.shared(timeout)
        try:
            yield
        finally:
            self.release()

    def close(self) -> None:
        os.close(self._lock_fd)
        os.close(self._turnstile_fd)
