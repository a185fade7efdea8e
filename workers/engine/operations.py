"""Running operations: the working directory and liveness lock of each backup and restore.

Every backup and restore is an operation with a working directory `tmp/<op>/` and a liveness
lock `tmp/<op>.lock` that its owner holds for its whole life. Whoever can take that lock knows
the owner is dead and cleans up after it (`clean_leftovers`); prune reads the live operations'
claim journals and restore markers (`live_operations`). See docs/repository-format.md,
"Operations and leftovers" and "Locks and garbage collection".
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from workers.engine import fs
from workers.engine.errors import PointExists
from workers.engine.locks import RepositoryLock, create_locked, is_held_by_someone, try_exclusive
from workers.engine.packs import PACK_TARGET_SIZE, PackWriter
from workers.engine.repository import RepositoryDir


class Operation:
    """One running backup or restore: a working directory under tmp/ and the packs it needs.

    The liveness lock file is locked before it gets its visible name, so a live operation is
    never mistaken for a dead one.
    """

    def __init__(self, repo: RepositoryDir, kind: str, limiter=None):
        self.repo = repo
        self.limiter = limiter
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.id = f"{kind}-{stamp}-{os.getpid()}-{secrets.token_hex(4)}"
        self.dir = repo.tmp_dir / self.id
        self._lock_path = repo.tmp_dir / f"{self.id}.lock"
        clean_leftovers(repo)
        pending = repo.tmp_dir / f".new-{self.id}.lock"
        self._owner_fd = create_locked(pending)
        os.rename(pending, self._lock_path)
        self.dir.mkdir()
        self._lock = RepositoryLock(repo.root)
        self._mutex = threading.Lock()
        self._refs_fd = os.open(self.dir / "refs", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._claimed: dict[bytes, bool] = {}
        self._writers: dict[int, PackWriter] = {}
        self._open_writers: list[PackWriter] = []
        self._stored: dict[int, int] = {}  # bytes of object records written, per thread
        self.flusher = fs.Flusher() if kind == "backup" else None
        self.closed = False

    def _journal(self, pack_id: bytes, check: bool) -> bool:
        with self._mutex:
            known = self._claimed.get(pack_id)
            if known is not None:
                return known
            self._lock.shared()
            try:
                fs.write_all(self._refs_fd, pack_id)
                present = self.repo.pack_path(pack_id).exists() if check else True
            finally:
                self._lock.release()
            self._claimed[pack_id] = present
            return present

    def claim_pack(self, pack_id: bytes) -> bool:
        """Record that this operation needs an existing pack; True when it is there.

        The record is made under the shared repository lock, before the existence check, so a
        collector (exclusive lock) either sees the record and keeps the pack, or ran before the
        check and the caller finds the pack missing and stores the data again.
        """
        return self._journal(pack_id, check=True)

    def register_pack(self, pack_id: bytes) -> None:
        """Record a pack this operation is about to create (so prune never deletes it)."""
        self._journal(pack_id, check=False)

    def store(self, record: bytes) -> tuple[bytes, int]:
        """Append an object record to this thread's open pack: (pack id, offset)."""
        key = threading.get_ident()
        writer = self._writers.get(key)
        if writer is None or writer.size >= PACK_TARGET_SIZE:
            if writer is not None:
                writer.close()
                with self._mutex:
                    self._open_writers.remove(writer)
            writer = PackWriter(self)
            with self._mutex:
                self._writers[key] = writer
                self._open_writers.append(writer)
        placed = writer.append(record)
        self._stored[key] = self._stored.get(key, 0) + len(record)  # only this thread's key
        return placed

    def bytes_stored(self) -> int:
        """Bytes of object records written to packs so far, by every thread (progress)."""
        return sum(list(self._stored.values()))

    def close_packs(self) -> None:
        for writer in self._open_writers:
            writer.close()
        self._open_writers.clear()
        self._writers.clear()

    def mark_restoring(self, point_id: str) -> bool:
        """Protect `point_id` from prune while it is restored; False if it is already gone."""
        with self._lock.held():
            (self.dir / "restoring").write_text(point_id)
            return self.repo.point_path(point_id).exists()

    def publish_point(self, tmp_point: Path, point_id: str) -> None:
        """Make a finished point visible: packs durable first, then one link. A link (unlike a
        rename) never replaces an existing point that happens to have the same id."""
        self.flusher.close()
        fs.syncfs(self.repo.root)
        with self._mutex, self._lock.held():
            try:
                os.link(tmp_point, self.repo.point_path(point_id))
            except FileExistsError:
                raise PointExists(
                    f"A recovery point named {point_id} appeared while this backup ran; "
                    f"nothing was published (run the backup again)."
                ) from None
            fs.fsync_dir(self.repo.points_dir)
        os.unlink(tmp_point)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.flusher is not None:
            self.flusher.close()
        for writer in self._open_writers:  # only a failed or canceled operation has any
            writer.abandon()
        self._open_writers.clear()
        self._writers.clear()
        os.close(self._refs_fd)
        self._lock.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        try:
            os.unlink(self._lock_path)
        except OSError as error:
            if error.errno != errno.ENOENT:
                raise
        os.close(self._owner_fd)

    def __enter__(self) -> Operation:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def live_operations(repo: RepositoryDir) -> list[Path]:
    """Working directories of operations whose owner process is alive."""
    live = []
    for entry in os.scandir(repo.tmp_dir):
        name = entry.name
        if name.endswith(".lock") and not name.startswith(".") and is_held_by_someone(entry.path):
            live.append(repo.tmp_dir / entry.name[: -len(".lock")])
    return live


def clean_leftovers(repo: RepositoryDir) -> int:
    """Remove working files of operations whose process died (kill -9, power loss)."""
    removed = 0
    now = time.time()
    for entry in list(os.scandir(repo.tmp_dir)):
        name = entry.name
        if name.startswith(".new-"):
            # An owner file not yet locked and renamed; only very old ones are leftovers.
            with contextlib.suppress(FileNotFoundError):
                if now - entry.stat().st_mtime > 60:
                    os.unlink(entry.path)
                    removed += 1
        elif name.endswith(".lock"):
            removed += _clean_dead_operation(Path(entry.path))
        elif entry.is_dir(follow_symlinks=False) and not (repo.tmp_dir / f"{name}.lock").exists():
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
    return removed


def _clean_dead_operation(lock_path: Path) -> int:
    try:
        fd = os.open(lock_path, os.O_RDWR)
    except FileNotFoundError:
        return 0
    try:
        if not try_exclusive(fd):
            return 0  # alive
        shutil.rmtree(lock_path.with_suffix(""), ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path)
        return 1
    finally:
        os.close(fd)
