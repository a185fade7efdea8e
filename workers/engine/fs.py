"""File-system helpers: every write to the repository, and what makes it durable.

`write_all` is the one place bytes reach the repository (packs, point files, claim journals,
config and keys); `write_limited` cuts writes for the rate limiter; the `Flusher` starts the
writeback of finished pack ranges early and `syncfs` makes everything durable in one call.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import secrets
import threading
from pathlib import Path

WRITE_PIECE = 1024 * 1024
EARLY_WRITEBACK = True

_libc = None
_SYNC_FILE_RANGE_WRITE = 2


def write_all(fd: int, data) -> None:
    """Every byte of packs, point files, config and keys goes through here (tests observe it)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_limited(fd: int, data, limiter) -> None:
    """Write `data`, in pieces small enough for the rate limiter's burst."""
    view = memoryview(data)
    piece = WRITE_PIECE if limiter is None else limiter.piece_size
    for start in range(0, len(view), piece):
        chunk = view[start : start + piece]
        if limiter is not None:
            limiter.acquire(len(chunk))
        write_all(fd, chunk)


def fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomically(path: Path, data: bytes, exclusive: bool) -> bool:
    """Write `path` via a fsync'd temp file. With `exclusive`, keep an existing file (False)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
        else:
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(path.parent)
    return True


def _libc_handle():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        if hasattr(_libc, "sync_file_range"):
            _libc.sync_file_range.argtypes = [
                ctypes.c_int,
                ctypes.c_int64,
                ctypes.c_int64,
                ctypes.c_uint,
            ]
    return _libc


class Flusher:
    """A background thread that starts the writeback of finished pack ranges.

    The final sync of a backup then finds little left to write: the disk works while the CPUs
    hash and compress. sync_file_range only starts writeback (it does not wait and promises
    nothing); durability still comes from the sync before a point is published.
    """

    def __init__(self):
        function = getattr(_libc_handle(), "sync_file_range", None) if EARLY_WRITEBACK else None
        self._function = function
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = None
        if function is not None:
            self._thread = threading.Thread(target=self._run, name="zdm-flush", daemon=True)
            self._thread.start()

    def submit(self, fd: int, offset: int, length: int) -> None:
        if self._thread is not None:
            self._queue.put((os.dup(fd), offset, length))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            fd, offset, length = item
            try:
                self._function(fd, offset, length, _SYNC_FILE_RANGE_WRITE)
            finally:
                os.close(fd)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None


def syncfs(path: Path) -> None:
    """Make everything written on the repository's filesystem durable, in one call."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        libc = _libc_handle()
        if getattr(libc, "syncfs", None) is None or libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)
