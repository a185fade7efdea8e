"""The repository on disk: its layout, configuration, keys, locks and running operations.

See docs/repository-format.md for the format and the reasoning behind the lock protocol.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import secrets
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from workers.engine import locking
from workers.engine.errors import DataCorrupted, NotARepository, ObjectMissing
from workers.engine.keys import RepositoryKeys, unwrap_keys, wrap_keys
from workers.engine.objects import HEADER_SIZE, parse_header

FORMAT = 1
DEFAULT_BLOCK_SIZE = 256 * 1024
WRITE_PIECE = 64 * 1024


def _write_all(fd: int, data) -> None:
    """Every byte the engine writes into a repository goes through here (tests observe it)."""
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
        _write_all(fd, chunk)


def fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file_atomically(path: Path, data: bytes, exclusive: bool) -> bool:
    """Write `path` via a fsync'd temp file. With `exclusive`, keep an existing file (False)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        _write_all(fd, data)
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


_libc = None


def _syncfs(path: Path) -> None:
    """Make everything written on the repository's filesystem durable, in one call."""
    global _libc
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        if getattr(_libc, "syncfs", None) is None or _libc.syncfs(fd) != 0:
            os.sync()
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
        locking.acquire(self._turnstile_fd, fcntl.LOCK_EX, "the repository", timeout)
        try:
            locking.acquire(self._lock_fd, fcntl.LOCK_SH, "the repository", timeout)
        finally:
            locking.release(self._turnstile_fd)

    def exclusive(self, timeout: float | None = None) -> None:
        locking.acquire(self._turnstile_fd, fcntl.LOCK_EX, "the repository", timeout)
        self._holds_turnstile = True
        try:
            locking.acquire(self._lock_fd, fcntl.LOCK_EX, "the repository", timeout)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        locking.release(self._lock_fd)
        if self._holds_turnstile:
            locking.release(self._turnstile_fd)
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


class Repository:
    """A repository directory: `config`, `keys`, `data/`, `points/`, `tmp/`, `lock`, `turnstile`."""

    def __init__(self, root: Path, config: dict):
        self.root = root
        self.config = config
        self.repository_id: str = config["repository_id"]
        self.block_size: int = config["block_size"]
        self.data_dir = root / "data"
        self.points_dir = root / "points"
        self.tmp_dir = root / "tmp"

    @classmethod
    def open(cls, path: str | os.PathLike) -> Repository:
        root = Path(path).absolute()
        try:
            config = json.loads((root / "config").read_bytes())
        except FileNotFoundError:
            raise NotARepository(f"{root} is not a ZDM repository (no config file).") from None
        except (OSError, ValueError) as error:
            raise NotARepository(
                f"The config of repository {root} is unreadable ({error})."
            ) from None
        if config.get("format") != FORMAT or config.get("kind") != "zdm-repository":
            raise NotARepository(f"{root} is not a ZDM repository of format {FORMAT}.")
        return cls(root, config)

    @classmethod
    def open_or_create(
        cls, path: str | os.PathLike, block_size: int = DEFAULT_BLOCK_SIZE
    ) -> Repository:
        """Open the repository at `path`, creating it (and the directory) when absent."""
        root = Path(path).absolute()
        if (root / "config").exists():
            return cls.open(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
            for name in ("points", "tmp"):
                (root / name).mkdir(exist_ok=True)
            for prefix in range(256):
                (root / "data" / f"{prefix:02x}").mkdir(parents=True, exist_ok=True)
            config = {
                "kind": "zdm-repository",
                "format": FORMAT,
                "repository_id": secrets.token_hex(16),
                "block_size": block_size,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            # Two processes creating the same repository: the first link wins, both use it.
            _write_file_atomically(root / "config", json.dumps(config, indent=1).encode(), True)
        except OSError as error:
            raise NotARepository(
                f"Cannot create a repository at {root} ({error.strerror})."
            ) from None
        return cls.open(root)

    # --- names -----------------------------------------------------------------------------
    def object_path(self, oid: bytes) -> Path:
        name = oid.hex()
        return self.data_dir / name[:2] / name

    def point_path(self, point_id: str) -> Path:
        return self.points_dir / point_id

    def point_ids(self) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(self.points_dir) if not e.name.startswith("."))
        except FileNotFoundError:
            raise NotARepository(f"{self.root} has no points directory.") from None

    def object_ids(self):
        """Every object id present under data/ (a generator; the set may be large)."""
        for prefix in os.scandir(self.data_dir):
            if not prefix.is_dir():
                continue
            for entry in os.scandir(prefix.path):
                if len(entry.name) == 64 and not entry.name.startswith("."):
                    with contextlib.suppress(ValueError):
                        yield bytes.fromhex(entry.name)

    # --- keys ------------------------------------------------------------------------------
    def has_keys(self) -> bool:
        return (self.root / "keys").exists()

    def load_keys(self, master: bytes | None, create: bool = False) -> RepositoryKeys:
        """The repository keys, unwrapped with `master`; with `create`, made on first use."""
        path = self.root / "keys"
        if create and not path.exists():
            if master is None:
                unwrap_keys(None, {}, self.repository_id)  # raises KeyMissing
            record = wrap_keys(master, RepositoryKeys.generate(), self.repository_id)
            _write_file_atomically(path, json.dumps(record, indent=1).encode(), True)
        try:
            record = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise NotARepository(f"Repository {self.root} has no keys file.") from None
        return unwrap_keys(master, record, self.repository_id)

    # --- objects ---------------------------------------------------------------------------
    def read_object(self, oid: bytes) -> bytes:
        try:
            with open(self.object_path(oid), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            name = oid.hex()
            raise ObjectMissing(
                f"Object {name} is missing from the repository (data/{name[:2]}/{name}).", name
            ) from None

    def object_is_sound(self, oid: bytes) -> bool:
        """True when the object exists and its size agrees with its header (a cheap check)."""
        try:
            fd = os.open(self.object_path(oid), os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            header = os.pread(fd, HEADER_SIZE, 0)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        try:
            _, _, _, payload_len = parse_header(header, oid.hex())
        except DataCorrupted:
            return False
        return size == HEADER_SIZE + payload_len

    def sync(self) -> None:
        _syncfs(self.root)

    # --- operations and leftovers ----------------------------------------------------------
    def start_operation(self, kind: str) -> Operation:
        return Operation(self, kind)

    def lock(self) -> RepositoryLock:
        return RepositoryLock(self.root)

    def live_operations(self) -> list[Path]:
        """Working directories of operations whose owner process is alive."""
        live = []
        for entry in os.scandir(self.tmp_dir):
            name = entry.name
            if (
                name.endswith(".lock")
                and not name.startswith(".")
                and locking.is_held_by_someone(entry.path)
            ):
                live.append(self.tmp_dir / entry.name[: -len(".lock")])
        return live

    def clean_leftovers(self) -> int:
        """Remove working files of operations whose process died (kill -9, power loss)."""
        removed = 0
        now = time.time()
        for entry in list(os.scandir(self.tmp_dir)):
            name = entry.name
            if name.startswith(".new-"):
                # An owner file not yet locked and renamed; only very old ones are leftovers.
                with contextlib.suppress(FileNotFoundError):
                    if now - entry.stat().st_mtime > 60:
                        os.unlink(entry.path)
                        removed += 1
            elif name.endswith(".lock"):
                removed += self._clean_dead_operation(Path(entry.path))
            elif (
                entry.is_dir(follow_symlinks=False) and not (self.tmp_dir / f"{name}.lock").exists()
            ):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed += 1
        return removed

    def _clean_dead_operation(self, lock_path: Path) -> int:
        try:
            fd = os.open(lock_path, os.O_RDWR)
        except FileNotFoundError:
            return 0
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # alive
            shutil.rmtree(lock_path.with_suffix(""), ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock_path)
            return 1
        finally:
            os.close(fd)


class Operation:
    """One running backup or restore: a working directory under tmp/ and the claims it made.

    The owner holds an exclusive flock on `tmp/<id>.lock` for its whole life; anyone who can take
    that lock knows the owner is dead and may delete `tmp/<id>/`. The lock file is locked before it
    gets its visible name, so a live operation is never mistaken for a dead one.
    """

    def __init__(self, repo: Repository, kind: str):
        self.repo = repo
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.id = f"{kind}-{stamp}-{os.getpid()}-{secrets.token_hex(4)}"
        self.dir = repo.tmp_dir / self.id
        self._lock_path = repo.tmp_dir / f"{self.id}.lock"
        repo.clean_leftovers()
        pending = repo.tmp_dir / f".new-{self.id}.lock"
        self._owner_fd = os.open(pending, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(self._owner_fd, fcntl.LOCK_EX)
        os.rename(pending, self._lock_path)
        self.dir.mkdir()
        self._lock = repo.lock()
        self._mutex = threading.Lock()
        self._refs_fd = os.open(self.dir / "refs", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._counter = 0
        self.closed = False

    def claim(self, oid: bytes) -> bool:
        """Record that this operation needs `oid`; True when a sound copy is already stored.

        The record is made under the shared repository lock, before the existence check, so a
        collector (exclusive lock) either sees the record and keeps the object, or ran before
        the check and the caller finds the object missing and writes it.
        """
        with self._mutex:
            self._lock.shared()
            try:
                _write_all(self._refs_fd, oid)
                return self.repo.object_is_sound(oid)
            finally:
                self._lock.release()

    def temp_path(self, stem: str) -> Path:
        with self._mutex:
            self._counter += 1
            return self.dir / f"{stem}-{self._counter}"

    def write_object(self, oid: bytes, blob: bytes, limiter=None) -> None:
        tmp = self.temp_path("object")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            write_limited(fd, blob, limiter)
        finally:
            os.close(fd)
        os.rename(tmp, self.repo.object_path(oid))

    def mark_restoring(self, point_id: str) -> bool:
        """Protect `point_id` from prune while it is restored; False if it is already gone."""
        with self._lock.held():
            (self.dir / "restoring").write_text(point_id)
            return self.repo.point_path(point_id).exists()

    def publish_point(self, tmp_point: Path, point_id: str) -> None:
        """Make a finished point visible: objects durable first, then one rename."""
        self.repo.sync()
        with self._mutex, self._lock.held():
            os.rename(tmp_point, self.repo.point_path(point_id))
            fsync_dir(self.repo.points_dir)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
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
