"""The repository on disk: its layout, configuration, keys, packs, locks and running operations.

See docs/repository-format.md for the format and the reasoning behind the lock protocol.
"""

from __future__ import annotations

import contextlib
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

from workers.engine import fs, locks
from workers.engine.errors import NotARepository, PointExists
from workers.engine.keys import RepositoryKeys, unwrap_keys, wrap_keys
from workers.engine.packs import PACK_ID_SIZE, PACK_TARGET_SIZE, PackWriter

FORMAT = 1
DEFAULT_BLOCK_SIZE = 512 * 1024


class Repository:
    """A repository: `config`, `keys`, `packs/`, `points/`, `tmp/`, `lock`, `turnstile`."""

    def __init__(self, root: Path, config: dict):
        self.root = root
        self.config = config
        self.repository_id: str = config["repository_id"]
        self.block_size: int = config["block_size"]
        self.packs_dir = root / "packs"
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
        if root.is_dir():
            # Only an empty directory, or one another process is turning into a repository
            # right now, may become one: never scatter repository files into someone's data.
            foreign = [
                name
                for name in os.listdir(root)
                if name not in ("packs", "points", "tmp") and not name.startswith(".config.")
            ]
            if foreign:
                raise NotARepository(
                    f"{root} is not a ZDM repository and not empty; use an empty directory."
                )
        try:
            root.mkdir(parents=True, exist_ok=True)
            for name in ("points", "tmp"):
                (root / name).mkdir(exist_ok=True)
            for prefix in range(256):
                (root / "packs" / f"{prefix:02x}").mkdir(parents=True, exist_ok=True)
            config = {
                "kind": "zdm-repository",
                "format": FORMAT,
                "repository_id": secrets.token_hex(16),
                "block_size": block_size,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            # Two processes creating the same repository: the first link wins, both use it.
            fs.write_file_atomically(root / "config", json.dumps(config, indent=1).encode(), True)
        except OSError as error:
            raise NotARepository(
                f"Cannot create a repository at {root} ({error.strerror})."
            ) from None
        return cls.open(root)

    # --- names -----------------------------------------------------------------------------
    def pack_path(self, pack_id: bytes) -> Path:
        name = pack_id.hex()
        return self.packs_dir / name[:2] / name

    def point_path(self, point_id: str) -> Path:
        return self.points_dir / point_id

    def point_ids(self) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(self.points_dir) if not e.name.startswith("."))
        except FileNotFoundError:
            raise NotARepository(f"{self.root} has no points directory.") from None

    def pack_ids(self):
        """Every pack id present under packs/ (a generator)."""
        for prefix in os.scandir(self.packs_dir):
            if not prefix.is_dir():
                continue
            for entry in os.scandir(prefix.path):
                if len(entry.name) == 2 * PACK_ID_SIZE and not entry.name.startswith("."):
                    with contextlib.suppress(ValueError):
                        yield bytes.fromhex(entry.name)

    # --- keys ------------------------------------------------------------------------------
    def load_keys(self, master: bytes | None, create: bool = False) -> RepositoryKeys:
        """The repository keys, unwrapped with `master`; with `create`, made on first use."""
        path = self.root / "keys"
        if create and not path.exists():
            if master is None:
                unwrap_keys(None, {}, self.repository_id)  # raises KeyMissing
            record = wrap_keys(master, RepositoryKeys.generate(), self.repository_id)
            fs.write_file_atomically(path, json.dumps(record, indent=1).encode(), True)
        try:
            record = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise NotARepository(f"Repository {self.root} has no keys file.") from None
        return unwrap_keys(master, record, self.repository_id)

    def sync(self) -> None:
        fs.syncfs(self.root)

    # --- operations and leftovers ----------------------------------------------------------
    def start_operation(self, kind: str, limiter=None) -> Operation:
        return Operation(self, kind, limiter)

    def lock(self) -> locks.RepositoryLock:
        return locks.RepositoryLock(self.root)

    def live_operations(self) -> list[Path]:
        """Working directories of operations whose owner process is alive."""
        live = []
        for entry in os.scandir(self.tmp_dir):
            name = entry.name
            if (
                name.endswith(".lock")
                and not name.startswith(".")
                and locks.is_held_by_someone(entry.path)
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
    """One running backup or restore: a working directory under tmp/ and the packs it needs.

    The owner holds an exclusive flock on `tmp/<id>.lock` for its whole life; anyone who can take
    that lock knows the owner is dead and may delete `tmp/<id>/`. The lock file is locked before it
    gets its visible name, so a live operation is never mistaken for a dead one.
    """

    def __init__(self, repo: Repository, kind: str, limiter=None):
        self.repo = repo
        self.limiter = limiter
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
        self._claimed: dict[bytes, bool] = {}
        self._writers: dict[int, PackWriter] = {}
        self._open_writers: list[PackWriter] = []
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
        return writer.append(record)

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
        self.repo.sync()
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
