"""Directory sources: files with their metadata, `excludeDir`, incremental skipping of unchanged
files.

A directory point's block table lists the objects of its *tree*: a stream of JSON lines, one per
file system entry, in pre-order with children sorted by name (which is the lexicographic order
of the path's components, so two trees can be merged in one pass). A file's line carries the
table entries of its content blocks; contents are stored exactly like block-source data. See
docs/repository-format.md, "Directory sources".
"""

from __future__ import annotations

import base64
import json
import os
import stat
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from workers.engine import packs
from workers.engine.block import IN_FLIGHT, WORKERS, BlockStore, restore_blocks, tune_allocator
from workers.engine.errors import (
    BackupCanceled,
    DataCorrupted,
    InvalidArgument,
    RestoreCanceled,
    SourceError,
    TargetError,
)
from workers.engine.objects import decode_object
from workers.engine.points import ENTRY, ENTRY_SIZE, ZERO_ENTRY, iter_table

TYPES = {
    stat.S_IFDIR: "dir",
    stat.S_IFREG: "file",
    stat.S_IFLNK: "symlink",
    stat.S_IFIFO: "fifo",
    stat.S_IFCHR: "char",
    stat.S_IFBLK: "block",
}


@dataclass
class DirectoryStats:
    files: int = 0
    directories: int = 0
    others: int = 0  # symlinks, fifos, devices
    unchanged_files: int = 0  # incremental: taken from the parent without reading
    total_size: int = 0  # bytes of regular files
    packs: set = field(default_factory=set)  # every pack a file block lives in


def _components(path: str) -> list[str]:
    return path.split("/") if path else []


def normalize_excludes(exclude_dirs) -> list[str]:
    excludes = []
    for path in exclude_dirs:
        if not os.path.isabs(path):
            raise InvalidArgument(f"Excluded directory {path} must be an absolute path.")
        excludes.append(os.path.normpath(path))
    return excludes


def _excluded(path: str, excludes: list[str]) -> bool:
    return any(path == ex or path.startswith(ex.rstrip("/") + "/") for ex in excludes)


def walk(root: str, excludes: list[str]) -> Iterator[tuple[str, str, os.stat_result]]:
    """(relative path, absolute path, lstat) of the root and everything below it, in pre-order
    with children sorted by name; excluded directories and other file systems are not entered
    (a mount point itself is kept, empty, like `--one-file-system`)."""
    try:
        root_stat = os.stat(root)  # the source may be given as a symlink to the directory
    except OSError as error:
        raise SourceError(f"Cannot read source {root} ({error.strerror}).") from None
    yield "", root, root_stat
    yield from walk_below(root, "", root_stat.st_dev, excludes)


def walk_below(directory: str, relative: str, device: int, excludes: list[str]):
    """The entries below `directory` (pre-order, sorted), without re-yielding it."""
    stack = [iter(_children(directory, relative, excludes))]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        child, path, info = entry
        yield entry
        if stat.S_ISDIR(info.st_mode) and info.st_dev == device:
            stack.append(iter(_children(path, child, excludes)))


def _children(directory: str, relative: str, excludes: list[str]):
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    except OSError as error:
        raise SourceError(f"Cannot list directory {directory} ({error.strerror}).") from None
    children = []
    for name in names:
        path = os.path.join(directory, name)
        if _excluded(path, excludes):
            continue
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        children.append((f"{relative}/{name}" if relative else name, path, info))
    return children


def _record(relative: str, path: str, info: os.stat_result) -> dict | None:
    kind = TYPES.get(stat.S_IFMT(info.st_mode))
    if kind is None:
        return None  # sockets and the like are not backed up
    record = {
        "path": relative,
        "type": kind,
        "mode": stat.S_IMODE(info.st_mode),
        "uid": info.st_uid,
        "gid": info.st_gid,
        "mtime_ns": info.st_mtime_ns,
        "atime_ns": info.st_atime_ns,
    }
    if kind == "file":
        record.update(size=info.st_size, inode=info.st_ino, ctime_ns=info.st_ctime_ns)
    elif kind == "symlink":
        record["target"] = os.readlink(path)
    elif kind in ("char", "block"):
        record["rdev"] = info.st_rdev
    return record


def _unchanged(record: dict, parent: dict | None) -> bool:
    return (
        parent is not None
        and parent["type"] == "file"
        and all(parent.get(key) == record[key] for key in ("size", "mtime_ns", "ctime_ns", "inode"))
    )


class TreeReader:
    """Streams the records of a directory point's tree (bounded memory); `point_path` is the
    point file's path or, better, the `PointFile` already opened and checked."""

    def __init__(self, repo, point_path, meta, keys):
        self._records = self._read(repo, point_path, meta, keys)
        self._next = next(self._records, None)
        self.damaged = False

    @staticmethod
    def _read(repo, point_path, meta, keys) -> Iterator[dict]:
        pending = b""
        block_size, size = meta["block_size"], meta["tree_size"]
        for index, entry in enumerate(iter_table(point_path)):
            oid, pack_id, offset, length = ENTRY.unpack(entry)
            expected = min(block_size, size - index * block_size)
            chunk = decode_object(
                packs.read_record(repo, oid, pack_id, offset, length), oid, keys, expected
            )
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for line in lines:
                yield json.loads(line)

    def __iter__(self):
        while self._next is not None:
            record, self._next = self._next, next(self._records, None)
            yield record

    def find(self, path: str) -> dict | None:
        """The record for `path`, if any; calls must come in tree order. A parent tree that turns
        out damaged just stops matching: the files are then read like in a full."""
        key = _components(path)
        try:
            while self._next is not None and _components(self._next["path"]) < key:
                self._next = next(self._records, None)
        except (DataCorrupted, ValueError):
            self._next, self.damaged = None, True
        if self._next is not None and self._next["path"] == path:
            return self._next
        return None


def file_entries(record: dict) -> list[bytes]:
    raw = base64.b64decode(record.get("blocks", ""))
    return [raw[i : i + ENTRY_SIZE] for i in range(0, len(raw), ENTRY_SIZE)]


def backup_directory(
    op, root, excludes, store: BlockStore, tree_file, parent: TreeReader | None, progress, cancel
) -> DirectoryStats:
    """Walk `root`, store file contents, write the tree (JSON lines) to `tree_file`."""
    tune_allocator()
    stats = DirectoryStats()
    block_size = store.block_size
    # queue items: ("block", record, future) or ("end", record, None), consumed in order
    queue: deque = deque()
    pending_blocks = 0

    def consume() -> None:
        nonlocal pending_blocks
        kind, record, future = queue.popleft()
        if kind == "block":
            pending_blocks -= 1
            entry = store.count(*future.result())
            progress.advance(0)  # reports go on while the last blocks are written
            record["_entries"].append(entry)
            if entry != ZERO_ENTRY:
                stats.packs.add(entry[32:48])
            return
        entries = record.pop("_entries", None)
        if entries is not None:
            record["blocks"] = base64.b64encode(b"".join(entries)).decode()
        tree_file.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")

    def submit(item) -> None:
        nonlocal pending_blocks
        queue.append(item)
        if item[0] == "block":
            pending_blocks += 1
        while pending_blocks >= IN_FLIGHT:
            consume()

    with ThreadPoolExecutor(WORKERS, thread_name_prefix="zdm-backup") as pool:
        try:
            for relative, path, info in walk(root, excludes):
                if cancel():
                    raise BackupCanceled("The backup was canceled; no recovery point was created.")
                record = _record(relative, path, info)
                if record is None:
                    continue
                previous = parent.find(relative) if parent is not None else None
                if record["type"] == "dir":
                    stats.directories += 1
                elif record["type"] != "file":
                    stats.others += 1
                else:
                    stats.files += 1
                    stats.total_size += record["size"]
                    if (
                        _unchanged(record, previous)
                        and not store.distrusts_any(file_entries(previous))
                        and _claim_all(op, previous)
                    ):
                        record["blocks"] = previous["blocks"]
                        stats.unchanged_files += 1
                        stats.packs.update(e[32:48] for e in file_entries(previous) if any(e))
                        progress.advance(record["size"])
                    else:
                        record["_entries"] = []
                        parent_entries = file_entries(previous) if previous else []
                        record["size"] = _read_file(
                            path, record, block_size, parent_entries, store, pool, submit, progress
                        )
                submit(("end", record, None))
            while queue:
                consume()
        except BaseException:
            for _, _, future in queue:
                if future is not None:
                    future.cancel()
            raise
    op.close_packs()
    return stats


def _claim_all(op, previous: dict) -> bool:
    return all(op.claim_pack(p) for p in {e[32:48] for e in file_entries(previous) if any(e)})


def _read_file(path, record, block_size, parent_entries, store, pool, submit, progress) -> int:
    """Submit every block of one file; returns the bytes actually read (its size now)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return 0  # removed after the walk saw it: an empty file is the honest record
    except OSError as error:
        raise SourceError(f"Cannot read {path} ({error.strerror}).") from None
    size = 0
    try:
        index = 0
        while block := os.read(fd, block_size):
            parent_entry = parent_entries[index] if index < len(parent_entries) else None
            submit(("block", record, pool.submit(store.process, block, parent_entry)))
            size += len(block)
            store.stats.bytes_read += len(block)
            index += 1
            progress.advance(len(block))
            if len(block) < block_size:
                break
    except OSError as error:
        raise SourceError(f"Reading {path} failed ({error.strerror}).") from None
    finally:
        os.close(fd)
    return size


def prepare_target(target: str) -> None:
    if os.path.lexists(target):
        if not os.path.isdir(target) or os.path.islink(target):
            raise TargetError(f"Target {target} exists and is not a directory.")
        if os.listdir(target):
            raise TargetError(f"Target directory {target} is not empty.")
    else:
        parent = os.path.dirname(os.path.abspath(target))
        if not os.path.isdir(parent):
            raise TargetError(f"The directory of target {target} does not exist.")
        try:
            os.mkdir(target, 0o700)
        except OSError as error:
            raise TargetError(f"Cannot create target {target} ({error.strerror}).") from None


def restore_directory(repo, tree: TreeReader, target: str, keys, block_size, progress, cancel):
    """Recreate the tree under `target`: contents, modes, owners (as root) and times."""
    tune_allocator()
    as_root = os.geteuid() == 0
    open_dirs: list[tuple[list[str], str, dict]] = []  # ancestors still to finish (times, mode)

    def finish_dirs(until: list[str]) -> None:
        while open_dirs and open_dirs[-1][0] != until[: len(open_dirs[-1][0])]:
            _, path, record = open_dirs.pop()
            _apply_metadata(path, record, as_root)

    with ThreadPoolExecutor(WORKERS, thread_name_prefix="zdm-restore") as pool:
        for record in tree:
            if cancel():
                raise RestoreCanceled("The restore was canceled.")
            components = _components(record["path"])
            finish_dirs(components)
            path = os.path.join(target, *components) if components else target
            kind = record["type"]
            try:
                if kind == "dir":
                    if components:
                        os.mkdir(path, 0o700)
                    open_dirs.append((components, path, record))
                    continue
                if kind == "file":
                    _restore_file(repo, record, path, keys, block_size, progress, cancel, pool)
                elif kind == "symlink":
                    os.symlink(record["target"], path)
                elif kind == "fifo":
                    os.mkfifo(path, 0o600)
                elif as_root:
                    device = stat.S_IFCHR if kind == "char" else stat.S_IFBLK
                    os.mknod(path, 0o600 | device, record["rdev"])
                else:
                    continue  # device nodes need root
            except OSError as error:
                raise TargetError(f"Cannot restore {path} ({error.strerror}).") from None
            _apply_metadata(path, record, as_root)
        while open_dirs:  # the rest, innermost first, the root last
            _, path, record = open_dirs.pop()
            _apply_metadata(path, record, as_root)


def _restore_file(repo, record, path, keys, block_size, progress, cancel, pool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        restore_blocks(
            repo, file_entries(record), record["size"], block_size, keys, fd, True,
            progress, cancel, pool,
        )  # fmt: skip
        os.ftruncate(fd, record["size"])
    finally:
        os.close(fd)


def _apply_metadata(path: str, record: dict, as_root: bool) -> None:
    symlink = record["type"] == "symlink"
    if as_root:
        os.chown(path, record["uid"], record["gid"], follow_symlinks=False)
    if not symlink:
        os.chmod(path, record["mode"])
    os.utime(path, ns=(record["atime_ns"], record["mtime_ns"]), follow_symlinks=False)
