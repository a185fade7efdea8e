"""Backup: read a block device, an image file or a directory into a new recovery point.

A full stores every non-zero block; an incremental compares each block with its parent's and
stores only the changed ones (and those whose object a verify distrusts). The new point appears
in one step, when its file is linked under `points/`. See docs/repository-format.md, "Full and
incremental" and "Write order".
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from workers.engine import block as blocks
from workers.engine import directory as directories
from workers.engine.errors import (
    DataCorrupted,
    InvalidArgument,
    KeyMissing,
    PointNotFound,
    SourceError,
    storage_errors,
)
from workers.engine.history import check_job, new_point_id, ordered_points
from workers.engine.keys import resolve_master_key
from workers.engine.locks import RepositoryLock
from workers.engine.objects import ObjectCodec
from workers.engine.operations import Operation
from workers.engine.points import PointFile, PointWriter
from workers.engine.progress import CancelCheck, Progress, ProgressCallback
from workers.engine.ratelimit import make_limiter
from workers.engine.repository import RepositoryDir
from workers.engine.settings import MASTER_KEY_ENV

MODES = ("full", "incremental")
NEWEST = "newest"  # `backup(parent=...)`: build on the job's newest point in the repository


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
    digest: str  # the point file's checksum (hex): record it, and restore and verify check it
    sequence: int  # the point's place among the job's points (1, 2, ...)
    healed_blocks: int = 0  # unchanged blocks stored again because their object was distrusted


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
    distrust: Iterable[str] = (),
    parent: str | None = NEWEST,
    parent_digest: str | None = None,
) -> BackupResult:
    """Back up `source` into a new recovery point of `job` and return what was done.

    `distrust`: ids (hex) of objects known to be damaged or missing (from a verify); an
    incremental stores such blocks again instead of reusing the parent's copy.
    `parent`, `parent_digest`: the point an incremental builds on. By default the job's newest
    point in the repository; a caller that keeps its own record (the service's database) names
    the point and its digest, so a point file planted in the repository is never built on.
    A parent that is missing, unusable or does not match its digest means a full.
    """
    started = time.monotonic()
    check_job(job)
    if mode not in MODES:
        raise InvalidArgument(f"Unknown mode {mode!r}; use full or incremental.")
    compression = None if compression in (None, "", "none") else compression
    encryption = None if encryption in (None, "", "none") else encryption
    if encryption not in (None, "aes256"):
        raise InvalidArgument(f"Unknown encryption {encryption!r}; use aes256 or none.")
    if rate_limit_mbps is None or rate_limit_mbps < 0:
        raise InvalidArgument("The rate limit must be zero (unlimited) or a positive number.")
    distrusted = _distrusted_ids(distrust)
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
        raise KeyMissing(f"Encrypted backups need a master key (set {MASTER_KEY_ENV}).")
    with storage_errors("Opening the repository", os.path.abspath(repo_path)):
        repo = RepositoryDir.open_or_create(repo_path)
        keys = repo.load_keys(master, create=True) if encryption else None
    if kind == "directory":
        excludes.append(str(repo.root))  # never back up the repository into itself
    codec = ObjectCodec(compression, keys)
    limiter = make_limiter(rate_limit_mbps)
    created = _now()
    cancel = CancelCheck(should_cancel)

    with (
        storage_errors("Writing to the repository", repo.root),
        Operation(repo, "backup", limiter) as op,
        contextlib.ExitStack() as cleanup,
    ):
        point_id = new_point_id(repo, created)
        newest, sequence = _job_history(repo, job, parent)
        parent = (
            _usable_parent(repo, newest, keys, kind, compression, parent_digest)
            if mode == "incremental"
            else None
        )
        if parent is not None:
            cleanup.callback(parent.close)
        parent_tree = None
        if parent and kind == "directory":
            try:  # reads the parent's first tree object: a damaged tree means a full
                parent_tree = directories.TreeReader(repo, parent, parent.meta, keys)
            except DataCorrupted:
                parent = None
        writer = PointWriter(op.dir / "point", keys, limiter)
        try:
            store = blocks.BlockStore(op, codec, repo.block_size, distrusted)
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
                "parent": parent.name if parent else None,
                "sequence": sequence,
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
    bytes_written = stats.stored_size + writer.size
    if progress is not None:  # the totals, and the average speed
        elapsed = max(time.monotonic() - started, 1e-9)
        progress(size, size, size / elapsed, stats.bytes_read, bytes_written)
    return BackupResult(
        point_id=point_id,
        job=job,
        mode=meta["mode"],
        parent=meta["parent"],
        source_size=size,
        bytes_read=stats.bytes_read,
        bytes_written=bytes_written,
        stored_size=stats.stored_size,
        objects_written=stats.objects_written,
        reused_blocks=stats.reused_blocks,
        zero_blocks=stats.zero_blocks,
        duration_seconds=time.monotonic() - started,
        digest=writer.digest,
        sequence=sequence,
        healed_blocks=stats.healed_blocks,
    )


def _distrusted_ids(distrust: Iterable[str]) -> frozenset:
    try:
        ids = frozenset(bytes.fromhex(object_id) for object_id in distrust)
    except (TypeError, ValueError):
        raise InvalidArgument("Distrusted object ids must be hexadecimal strings.") from None
    if any(len(object_id) != 32 for object_id in ids):
        raise InvalidArgument("Distrusted object ids must be 64 hexadecimal characters.")
    return ids


def _job_history(repo: RepositoryDir, job: str, parent: str | None) -> tuple[dict | None, int]:
    """(the point an incremental would build on, the sequence of the next one), read under the
    shared lock so that a prune never shows half of its work. `parent` is NEWEST, a point id
    the caller names (it must be a point of `job`), or None (no parent: a full)."""
    lock = RepositoryLock(repo.root)
    try:
        with lock.held():
            points = ordered_points(repo, job)
    finally:
        lock.close()
    sequence = 1 + max((meta.get("sequence", 0) for meta in points), default=0)
    if parent == NEWEST:
        return (points[-1] if points else None), sequence
    return next((meta for meta in points if meta["id"] == parent), None), sequence


def _usable_parent(
    repo: RepositoryDir, newest: dict | None, keys, kind: str, compression, digest: str | None
) -> PointFile | None:
    """The chosen parent point, opened and checked, if an incremental may build on it: same kind
    of source, same compression and encryption (a changed option starts over with a full, so a
    point never mixes plain and encrypted data), an intact point file, and the one recorded
    when it was made (`digest`, when the caller knows it)."""
    if newest is None or (
        newest["kind"] != kind
        or newest["block_size"] != repo.block_size
        or newest["encrypted"] != (keys is not None)
        or newest["compression"] != compression
    ):
        return None
    try:
        parent = PointFile(repo.point_path(newest["id"]))
    except (DataCorrupted, PointNotFound, OSError):
        return None
    try:
        parent.check(keys)
        parent.check_digest(digest)
        if parent.meta == newest:  # not replaced since it was listed
            return parent
    except (DataCorrupted, OSError):
        pass
    parent.close()
    return None


def _progress(callback: ProgressCallback | None, total: int, store) -> Progress:
    """Progress of a backup: the source's bytes read, the object bytes written to the
    repository (as they reach it, not as the blocks' results are taken in order)."""
    stats, op = store.stats, store.op
    return Progress(callback, total, counts=lambda: (stats.bytes_read, op.bytes_stored()))


def _backup_block_source(repo, op, source, store, writer, parent, progress, cancel) -> dict:
    fd, size = blocks.open_block_source(source)
    try:
        parent_table = parent.table() if parent else None
        blocks.backup_blocks(
            store, fd, size, writer, parent_table, _progress(progress, size, store), cancel
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
            op, source, excludes, store, tree_file, parent_tree, _progress(progress, total, store),
            cancel,
        )  # fmt: skip
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


def _now() -> datetime:
    """The clock that names points and stamps their times (never orders them)."""
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
