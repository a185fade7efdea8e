"""The engine's operations: backup, restore, list_points, verify, prune.

These are what the command line and the Celery agent call. Every failure is an `EngineError`
whose message is one sentence; see `workers.engine.errors`.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from workers.engine import block as blocks
from workers.engine import directory as directories
from workers.engine.errors import (
    DataCorrupted,
    EngineError,
    InvalidArgument,
    KeyMissing,
    PointNotFound,
    SourceError,
    StorageError,
    TargetError,
)
from workers.engine.keys import RepositoryKeys, resolve_master_key
from workers.engine.objects import ObjectCodec, decode_object
from workers.engine.points import (
    ENTRY,
    ZERO_ENTRY,
    PointWriter,
    RecoveryPoint,
    check_point_file,
    iter_table,
    read_meta,
)
from workers.engine.progress import CancelCheck, Progress, ProgressCallback
from workers.engine.ratelimit import make_limiter
from workers.engine.repository import PACK_ID_SIZE, Repository, fsync_dir

MODES = ("full", "incremental")
_POINT_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$")


@dataclass(frozen=True)
class BackupResult:
    point_id: str
    job: str
    mode: str  # the mode actually used: an incremental without a usable parent is a full
    parent: str | None
    source_size: int
    bytes_read: int
    bytes_written: int  # everything written to the repository (objects and point file)
    stored_size: int  # bytes of the new objects this point added
    objects_written: int
    reused_blocks: int
    zero_blocks: int
    duration_seconds: float


@dataclass(frozen=True)
class RestoreResult:
    point_id: str
    target: str
    bytes_restored: int
    duration_seconds: float


@dataclass
class VerifyReport:
    points_checked: int = 0
    objects_checked: int = 0
    read_data: bool = False
    problems: list[str] = field(default_factory=list)
    unreferenced_packs: int = 0  # garbage left by crashed or canceled runs; prune deletes it

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class PruneReport:
    job: str
    kept: list[str] = field(default_factory=list)
    removed_points: list[str] = field(default_factory=list)
    kept_in_use: list[str] = field(default_factory=list)  # being restored right now
    removed_packs: int = 0
    freed_bytes: int = 0


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _storage_errors(action: str):
    """Turn OS errors on the repository side into one-sentence StorageErrors."""

    @contextlib.contextmanager
    def guard():
        try:
            yield
        except OSError as error:
            where = f" ({error.filename})" if error.filename else ""
            raise StorageError(f"{action} failed: {error.strerror}{where}.") from None

    return guard()


def _check_job(job: str) -> None:
    if not job or not job.strip() or any(ord(c) < 32 for c in job) or len(job) > 255:
        raise InvalidArgument("The job name must be 1-255 printable characters.")


def _load_keys_for(repo: Repository, encrypted: bool, master_key) -> RepositoryKeys | None:
    if not encrypted:
        return None
    return repo.load_keys(resolve_master_key(master_key))


def _points_of(repo: Repository, job: str | None = None) -> list[dict]:
    metas = []
    for point_id in repo.point_ids():
        try:
            meta = read_meta(repo.point_path(point_id))
        except (DataCorrupted, PointNotFound):
            continue
        if job is None or meta["job"] == job:
            metas.append(meta)
    metas.sort(key=lambda meta: (meta["created_at"], meta["id"]))
    return metas


def _usable_parent(repo: Repository, job: str, keys, kind: str, compression) -> dict | None:
    """The job's newest point, if an incremental may build on it: same kind of source, same
    compression and encryption (a changed option starts over with a full, so a point never mixes
    plain and encrypted data), and an intact point file."""
    for meta in reversed(_points_of(repo, job)):
        if (
            meta["kind"] != kind
            or meta["block_size"] != repo.block_size
            or meta["encrypted"] != (keys is not None)
            or meta["compression"] != compression
        ):
            return None
        try:
            check_point_file(repo.point_path(meta["id"]), keys if meta["encrypted"] else None)
        except (DataCorrupted, OSError):
            return None
        return meta
    return None


def backup(
    repo_path: str | os.PathLike,
    job: str,
    source: str | os.PathLike,
    mode: str = "full",
    compression: str | None = None,
    encryption: str | None = None,
    rate_limit_mbps: float = 0,
    exclude_dirs: Iterable[str] = (),
    progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
    master_key: str | bytes | None = None,
) -> BackupResult:
    """Back up `source` into a new recovery point of `job` and return what was done."""
    started = time.monotonic()
    _check_job(job)
    if mode not in MODES:
        raise InvalidArgument(f"Unknown mode {mode!r}; use full or incremental.")
    compression = None if compression in (None, "", "none") else compression
    encryption = None if encryption in (None, "", "none") else encryption
    if encryption not in (None, "aes256"):
        raise InvalidArgument(f"Unknown encryption {encryption!r}; use aes256 or none.")
    if rate_limit_mbps is None or rate_limit_mbps < 0:
        raise InvalidArgument("The rate limit must be zero (unlimited) or a positive number.")
    source = os.fspath(source)
    try:
        source_mode = os.stat(source).st_mode
    except OSError as error:
        raise SourceError(f"Cannot read source {source} ({error.strerror}).") from None
    kind = "directory" if stat.S_ISDIR(source_mode) else "block"
    exclude_dirs = list(exclude_dirs)
    if kind == "block" and exclude_dirs:
        raise InvalidArgument(
            "Excluded directories apply only to directory sources, not to a block source."
        )
    excludes = directories.normalize_excludes(exclude_dirs)

    master = resolve_master_key(master_key) if encryption else None
    if encryption and master is None:
        raise KeyMissing("Encrypted backups need a master key (set ZDM_MASTER_KEY).")
    with _storage_errors("Opening the repository"):
        repo = Repository.open_or_create(repo_path)
        keys = repo.load_keys(master, create=True) if encryption else None
    if kind == "directory":
        excludes.append(str(repo.root))  # never back up the repository into itself
    codec = ObjectCodec(compression, keys)
    limiter = make_limiter(rate_limit_mbps)
    created = _now()
    point_id = created.strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)
    cancel = CancelCheck(should_cancel)

    with (
        _storage_errors("Writing to the repository"),
        repo.start_operation("backup", limiter) as op,
    ):
        parent = (
            _usable_parent(repo, job, keys, kind, compression) if mode == "incremental" else None
        )
        parent_tree = None
        if parent and kind == "directory":
            try:  # reads the parent's first tree object: a damaged tree means a full
                parent_tree = directories.TreeReader(
                    repo, repo.point_path(parent["id"]), parent, keys
                )
            except DataCorrupted:
                parent = None
        writer = PointWriter(op.dir / "point", keys, limiter)
        try:
            store = blocks.BlockStore(op, codec, repo.block_size)
            if kind == "block":
                details = _backup_block_source(
                    repo, op, source, store, writer, parent, progress, cancel
                )
            else:
                details = _backup_directory_source(
                    repo, op, source, excludes, store, writer, parent_tree, progress, cancel
                )
            stats = store.stats
            meta = {
                "id": point_id,
                "job": job,
                "kind": kind,
                "mode": "incremental" if parent else "full",
                "parent": parent["id"] if parent else None,
                "created_at": _iso(created),
                "finished_at": _iso(_now()),
                "source": os.path.abspath(source),
                "stored_size": stats.stored_size,
                "compression": compression,
                "encrypted": keys is not None,
                "block_size": repo.block_size,
                "objects_written": stats.objects_written,
                "zero_blocks": stats.zero_blocks,
                **details,
            }
            writer.finish(meta)
        finally:
            writer.close()
        op.publish_point(writer.path, point_id)
    size = meta["source_size"]
    if progress is not None:
        progress(size, size, size / max(time.monotonic() - started, 1e-9))
    return BackupResult(
        point_id=point_id,
        job=job,
        mode=meta["mode"],
        parent=meta["parent"],
        source_size=size,
        bytes_read=stats.bytes_read,
        bytes_written=stats.stored_size + writer.size,
        stored_size=stats.stored_size,
        objects_written=stats.objects_written,
        reused_blocks=stats.reused_blocks,
        zero_blocks=stats.zero_blocks,
        duration_seconds=time.monotonic() - started,
    )


def _backup_block_source(repo, op, source, store, writer, parent, progress, cancel) -> dict:
    fd, size = blocks.open_block_source(source)
    try:
        parent_table = iter_table(repo.point_path(parent["id"])) if parent else None
        blocks.backup_blocks(
            store, fd, size, writer, parent_table, Progress(progress, size), cancel
        )
    finally:
        os.close(fd)
    return {"source_size": size, "block_count": (size + repo.block_size - 1) // repo.block_size}


def _backup_directory_source(
    repo, op, source, excludes, store, writer, parent_tree, progress, cancel
) -> dict:
    total = sum(
        info.st_size
        for _, _, info in directories.walk(source, excludes)
        if stat.S_ISREG(info.st_mode)
    )
    # The tree is first written to a local scratch file (not the repository: writes to the
    # repository are rate limited and counted), then stored as ordinary objects listed by the
    # point's table.
    with tempfile.TemporaryFile(prefix="zdm-tree-") as tree_file:
        found = directories.backup_directory(
            op, source, excludes, store, tree_file, parent_tree, Progress(progress, total), cancel
        )
        tree_size = tree_file.tell()
        tree_file.seek(0)
        while chunk := tree_file.read(repo.block_size):
            writer.add(store.count(*store.process(chunk)))
    op.close_packs()
    return {
        "source_size": found.total_size,
        "block_count": (tree_size + repo.block_size - 1) // repo.block_size,
        "tree_size": tree_size,
        "files": found.files,
        "directories": found.directories,
        "unchanged_files": found.unchanged_files,
        "exclude_dirs": excludes,
        "packs": sorted(pack.hex() for pack in found.packs),
    }


def _check_point_id(point_id: str) -> None:
    if not _POINT_ID.match(point_id or ""):
        raise PointNotFound(f"Recovery point {point_id} does not exist (malformed id).")


def restore(
    repo_path: str | os.PathLike,
    point_id: str,
    target: str | os.PathLike,
    progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
    master_key: str | bytes | None = None,
    sync: bool = False,
) -> RestoreResult:
    """Write the data of `point_id` to `target` (a file, created or replaced, or a device).

    A device target is always flushed (fsync) before returning; a file target only with `sync`,
    like borg and restic, which leave that flush to the operating system.
    """
    started = time.monotonic()
    _check_point_id(point_id)
    repo = Repository.open(repo_path)
    path = repo.point_path(point_id)
    meta = read_meta(path)
    keys = _load_keys_for(repo, meta["encrypted"], master_key)
    target = os.path.abspath(os.fspath(target))
    with _storage_errors("The restore"), repo.start_operation("restore") as op:
        if not op.mark_restoring(point_id):
            raise PointNotFound(f"Recovery point {point_id} does not exist.")
        check_point_file(path, keys)
        size = meta["source_size"]
        table = iter_table(path)
        run = Progress(progress, size)
        cancel = CancelCheck(should_cancel)
        if meta["kind"] == "directory":
            _restore_to_directory(repo, meta, keys, path, target, run, cancel)
        elif _is_block_device(target):
            _restore_to_device(repo, meta, keys, table, target, run, cancel)
        else:
            _restore_to_file(repo, meta, keys, table, target, run, cancel, sync)
        run.finish()
    return RestoreResult(point_id, target, size, time.monotonic() - started)


def _restore_to_directory(repo, meta, keys, point_path, target, run, cancel) -> None:
    """Restore into a new sibling directory and rename it into place when complete, so a failed
    restore leaves nothing half-made. The target must be absent or an empty directory."""
    directories.prepare_target(target)
    tmp = os.path.join(
        os.path.dirname(target), f".{os.path.basename(target)}.zdm-restore-{secrets.token_hex(4)}"
    )
    try:
        os.mkdir(tmp, 0o700)
    except OSError as error:
        raise TargetError(
            f"Cannot create a directory beside {target} ({error.strerror})."
        ) from None
    try:
        tree = directories.TreeReader(repo, point_path, meta, keys)
        directories.restore_directory(repo, tree, tmp, keys, meta["block_size"], run, cancel)
        os.rmdir(target)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _is_block_device(path: str) -> bool:
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except FileNotFoundError:
        return False


def _restore_to_device(repo, meta, keys, table, target, run, cancel) -> None:
    try:
        fd = os.open(target, os.O_WRONLY)
    except OSError as error:
        raise TargetError(f"Cannot open target {target} ({error.strerror}).") from None
    try:
        if os.lseek(fd, 0, os.SEEK_END) < meta["source_size"]:
            raise TargetError(f"Target device {target} is smaller than the recovery point.")
        blocks.restore_blocks(
            repo, table, meta["source_size"], meta["block_size"], keys, fd, False, run, cancel
        )
        os.fsync(fd)
    finally:
        os.close(fd)


def _restore_to_file(repo, meta, keys, table, target, run, cancel, sync) -> None:
    """Restore into a temp file beside `target` and rename it: a failed restore leaves the old
    target untouched, and all-zero blocks stay holes (a sparse file)."""
    directory, name = os.path.split(target)
    if os.path.isdir(target):
        raise TargetError(
            f"Target {target} is a directory; a block point restores to a file or device."
        )
    if not os.path.isdir(directory):
        raise TargetError(f"The directory of target {target} does not exist.")
    tmp = os.path.join(directory, f".{name}.zdm-restore-{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise TargetError(
            f"Cannot create the restore target in {directory} ({error.strerror})."
        ) from None
    try:
        try:
            blocks.restore_blocks(
                repo, table, meta["source_size"], meta["block_size"], keys, fd, True, run, cancel
            )
            os.ftruncate(fd, meta["source_size"])
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
        if sync:
            fsync_dir(directory)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def list_points(repo_path: str | os.PathLike, job: str | None = None) -> list[RecoveryPoint]:
    """The recovery points in the repository (of `job` if given), oldest first."""
    repo = Repository.open(repo_path)
    with _storage_errors("Reading the repository"):
        return [RecoveryPoint.from_meta(meta) for meta in _points_of(repo, job)]


def point_ids(repo_path: str | os.PathLike) -> set[str]:
    """The ids of every point file the repository holds, readable or not (reconciliation:
    a point that is not here is gone). NotARepository when the path holds no repository
    (an unmounted share must not make every point look deleted)."""
    repo = Repository.open(repo_path)
    with _storage_errors("Reading the repository"):
        return set(repo.point_ids())


def verify(
    repo_path: str | os.PathLike,
    point_id: str | None = None,
    read_data: bool = False,
    master_key: str | bytes | None = None,
) -> VerifyReport:
    """Check point files and the objects they need; with `read_data`, decode every object.

    Problems are collected (each names the point, or the object and its pack), not raised.
    """
    repo = Repository.open(repo_path)
    report = VerifyReport(read_data=read_data)
    if point_id is not None:
        _check_point_id(point_id)
        if not repo.point_path(point_id).exists():
            raise PointNotFound(f"Recovery point {point_id} does not exist.")
        point_ids = [point_id]
    else:
        point_ids = repo.point_ids()
    keys_cache: list[RepositoryKeys | None] = []

    def keys_for(meta) -> RepositoryKeys | None:
        if not meta["encrypted"]:
            return None
        if not keys_cache:
            master = resolve_master_key(master_key)
            if master is None:
                raise KeyMissing(
                    "Verifying encrypted points needs the master key (set ZDM_MASTER_KEY)."
                )
            keys_cache.append(repo.load_keys(master))
        return keys_cache[0]

    seen: set[bytes] = set()
    problems_by_point: list[tuple[str, str]] = []
    with _storage_errors("Reading the repository"), ThreadPoolExecutor(blocks.WORKERS) as pool:
        for pid in point_ids:
            for problem in _verify_point(repo, pid, keys_for, read_data, seen, pool, report):
                problems_by_point.append((pid, problem))
    # A point deleted by a concurrent prune while we read it is not a problem of the repository.
    report.problems = [p for pid, p in problems_by_point if repo.point_path(pid).exists()]
    if point_id is None:
        referenced = {entry[32:48] for entry in seen}
        report.unreferenced_packs = sum(1 for pack in repo.pack_ids() if pack not in referenced)
    return report


def _verify_point(repo, point_id, keys_for, read_data, seen, pool, report) -> list[str]:
    path = repo.point_path(point_id)
    try:
        meta = read_meta(path)
        keys = keys_for(meta)
        check_point_file(path, keys)
    except (DataCorrupted, PointNotFound) as error:
        return [str(error)]
    report.points_checked += 1
    problems = []

    def check(entry: bytes, length: int) -> str | None:
        oid, pack_id, offset, record_length = ENTRY.unpack(entry)
        if not read_data:
            problem = repo.record_is_sound(oid, pack_id, offset, record_length)
            return problem and f"{problem.rstrip('.')}; needed by point {point_id}."
        try:
            record = repo.read_record(oid, pack_id, offset, record_length)
            decode_object(record, oid, keys, length)
        except DataCorrupted as error:
            return f"{str(error).rstrip('.')} (pack {pack_id.hex()}); needed by point {point_id}."
        return None

    futures = []

    def check_table(entries, size: int) -> None:
        nonlocal problems
        for index, entry in enumerate(entries):
            if entry == ZERO_ENTRY or entry in seen:
                continue
            seen.add(entry)
            length = min(block_size, size - index * block_size)
            futures.append(pool.submit(check, entry, length))
            if len(futures) >= 64:
                problems += _collect(futures, report)

    block_size = meta["block_size"]
    if meta["kind"] != "directory":
        check_table(iter_table(path), meta["source_size"])
        problems += _collect(futures, report)
        return problems
    check_table(iter_table(path), meta["tree_size"])
    problems += _collect(futures, report)
    if problems:
        return problems  # the tree itself is damaged: its files cannot be listed
    try:
        for record in directories.TreeReader(repo, path, meta, keys):
            if record["type"] == "file":
                check_table(directories.file_entries(record), record["size"])
    except (DataCorrupted, ValueError) as error:
        problems.append(f"The file tree of point {point_id} is unreadable ({error}).")
    problems += _collect(futures, report)
    return problems


def _collect(futures: list, report: VerifyReport) -> list[str]:
    found = [problem for problem in (future.result() for future in futures) if problem]
    report.objects_checked += len(futures)
    futures.clear()
    return found


def prune(
    repo_path: str | os.PathLike, job: str, keep: int, lock_timeout: float | None = None
) -> PruneReport:
    """Keep the `keep` newest points of `job`; delete the rest and every unneeded object.

    Runs under the exclusive repository lock; running backups keep their objects alive through
    their claim journals (see docs/repository-format.md, "Garbage collection").
    """
    _check_job(job)
    if keep < 0:
        raise InvalidArgument("The number of points to keep must be zero or more.")
    repo = Repository.open(repo_path)
    report = PruneReport(job=job)
    lock = repo.lock()
    try:
        lock.exclusive(lock_timeout)
        try:
            with _storage_errors("Pruning the repository"):
                _collect_garbage(repo, job, keep, report)
        finally:
            lock.release()
    finally:
        lock.close()
    return report


def _collect_garbage(repo: Repository, job: str, keep: int, report: PruneReport) -> None:
    repo.clean_leftovers()
    live_operations = repo.live_operations()
    restoring = set()
    for directory in live_operations:
        with contextlib.suppress(FileNotFoundError):
            restoring.add((directory / "restoring").read_text().strip())
    points = _points_of(repo, job)
    keep_ids = {meta["id"] for meta in points[max(0, len(points) - keep) :]} if keep else set()
    for meta in points:
        if meta["id"] in keep_ids:
            report.kept.append(meta["id"])
        elif meta["id"] in restoring:
            report.kept_in_use.append(meta["id"])
        else:
            os.unlink(repo.point_path(meta["id"]))
            report.removed_points.append(meta["id"])
    fsync_dir(repo.points_dir)

    live: set[bytes] = set()
    for point_id in repo.point_ids():
        try:
            live.update(entry[32:48] for entry in iter_table(repo.point_path(point_id)))
            # a directory point also needs the packs of its files' blocks, listed in its metadata
            live.update(
                bytes.fromhex(p) for p in read_meta(repo.point_path(point_id)).get("packs", ())
            )
        except (DataCorrupted, PointNotFound) as error:
            raise DataCorrupted(
                f"Point file {point_id} is unreadable, so prune cannot tell which packs it "
                f"needs and deleted no data ({error}).",
                point_id,
            ) from None
    for directory in live_operations:
        with contextlib.suppress(FileNotFoundError):
            journal = (directory / "refs").read_bytes()
            live.update(
                journal[start : start + PACK_ID_SIZE]
                for start in range(0, len(journal), PACK_ID_SIZE)
            )
    for pack_id in list(repo.pack_ids()):
        if pack_id in live:
            continue
        path = repo.pack_path(pack_id)
        with contextlib.suppress(FileNotFoundError):
            size = path.stat().st_size
            path.unlink()
            report.removed_packs += 1
            report.freed_bytes += size


__all__ = [
    "BackupResult",
    "EngineError",
    "PruneReport",
    "RestoreResult",
    "VerifyReport",
    "backup",
    "list_points",
    "point_ids",
    "prune",
    "restore",
    "verify",
]
