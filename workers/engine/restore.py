"""Restore: write a recovery point's data to a file, a device or a directory.

A file or directory target is written beside itself and renamed into place when complete, so a
failed or canceled restore leaves nothing half-made; both are reached through their directory
opened without following symbolic links. A device is written in place and always flushed. See
docs/repository-format.md, "Limits worth knowing" and "Directory sources".
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass

from workers.engine import block as blocks
from workers.engine import directory as directories
from workers.engine.errors import (
    UNWRITABLE,
    DataCorrupted,
    PointNotFound,
    TargetError,
    storage_errors,
)
from workers.engine.history import check_point_id
from workers.engine.keys import RepositoryKeys, resolve_master_key
from workers.engine.operations import Operation
from workers.engine.points import PointFile
from workers.engine.progress import CancelCheck, Progress, ProgressCallback
from workers.engine.repository import RepositoryDir


@dataclass(frozen=True)
class RestoreResult:
    point_id: str
    target: str
    bytes_restored: int
    duration_seconds: float


def restore(
    repo_path: str | os.PathLike,
    point_id: str,
    target: str | os.PathLike,
    progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
    master_key: str | bytes | None = None,
    sync: bool = False,
    expected_digest: str | None = None,
    require_encrypted: bool = False,
) -> RestoreResult:
    """Write the data of `point_id` to `target`: for a block point a file (created or replaced)
    or a device, for a directory point an absent or empty directory.

    `expected_digest`: the digest recorded when the point was made (`BackupResult.digest`); a
    point file that does not match it is refused. `require_encrypted`: refuse a point that is
    not encrypted (the caller knows the job was). Both guard against a point file replaced by
    someone with write access to the repository, which the file alone cannot reveal.

    A device target is always flushed (fsync) before returning; a file target only with `sync`,
    like borg and restic, which leave that flush to the operating system.
    """
    started = time.monotonic()
    check_point_id(point_id)
    repo = RepositoryDir.open(repo_path)
    target = os.path.abspath(os.fspath(target))
    with (
        storage_errors("The restore", repo.root),
        PointFile(repo.point_path(point_id)) as point,
        contextlib.ExitStack() as cleanup,
    ):
        meta = point.meta
        _check_trusted(point, expected_digest, require_encrypted)
        keys = _load_keys_for(repo, meta["encrypted"], master_key)
        if not _mark_restoring(repo, point_id, cleanup):
            raise PointNotFound(f"Recovery point {point_id} does not exist.")
        point.check(keys)
        size = meta["source_size"]
        table = point.table()
        run = Progress(progress, size)
        cancel = CancelCheck(should_cancel)
        if meta["kind"] == "directory":
            _restore_to_directory(repo, meta, keys, point, target, run, cancel)
        elif _is_block_device(target):
            _restore_to_device(repo, meta, keys, table, target, run, cancel)
        else:
            _restore_to_file(repo, meta, keys, table, target, run, cancel, sync)
        run.finish()
    return RestoreResult(point_id, target, size, time.monotonic() - started)


def _mark_restoring(repo: RepositoryDir, point_id: str, cleanup: contextlib.ExitStack) -> bool:
    """Protect the point from prune for the restore's life (an operation with a `restoring`
    marker); False when the point is gone already.

    A repository that is full or read-only cannot take the marker, and the restore goes on
    without it: read-only, nobody can delete the point meanwhile; full, a prune that deletes it
    meanwhile makes the restore fail (its objects missing), it never writes wrong data. The
    data is most needed exactly when its disk is in trouble."""
    op = None
    try:
        op = Operation(repo, "restore")
        present = op.mark_restoring(point_id)
    except OSError as error:
        if op is not None:
            op.close()
        if error.errno not in UNWRITABLE:
            raise
        return repo.point_path(point_id).exists()
    cleanup.callback(op.close)
    return present


def _load_keys_for(repo: RepositoryDir, encrypted: bool, master_key) -> RepositoryKeys | None:
    if not encrypted:
        return None
    return repo.load_keys(resolve_master_key(master_key))


def _check_trusted(point: PointFile, expected_digest: str | None, require_encrypted: bool) -> None:
    """The point file is the one recorded when it was made (and encrypted if it must be)."""
    point.check_digest(expected_digest)
    if require_encrypted and point.meta.get("encrypted") is not True:
        raise DataCorrupted(
            f"Recovery point {point.name} must be encrypted (its job is), but its file says "
            f"it is not (replaced or tampered).",
            point.name,
        )


def _restore_to_directory(repo, meta, keys, point_path, target, run, cancel) -> None:
    """Restore into a new sibling directory and rename it into place when complete, so a failed
    restore leaves nothing half-made. The target must be absent or an empty directory. The
    parent is opened without following symbolic links, the sibling is made and renamed through
    it, and right before the rename the parent's path must still lead to it."""
    directory, name = os.path.split(target)
    parent = _open_directory_nofollow(directory, target)
    try:
        directories.prepare_target(target)
        tmp_name = f".{name}.zdm-restore-{secrets.token_hex(4)}"
        try:
            os.mkdir(tmp_name, 0o700, dir_fd=parent)
        except OSError as error:
            raise TargetError(
                f"Cannot create a directory beside {target} ({error.strerror})."
            ) from None
        try:
            tree = directories.TreeReader(repo, point_path, meta, keys)
            tmp = os.path.join(directory, tmp_name)
            directories.restore_directory(repo, tree, tmp, keys, meta["block_size"], run, cancel)
            _check_same_directory(parent, directory, target)
            os.rmdir(name, dir_fd=parent)
            os.rename(tmp_name, name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            shutil.rmtree(tmp_name, dir_fd=parent, ignore_errors=True)
            raise
    finally:
        os.close(parent)


def _open_directory_nofollow(directory: str, target: str) -> int:
    """A descriptor of `directory` (absolute), reached without following any symbolic link:
    a path checked by the caller and then swapped for a link is refused, not followed."""
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in filter(None, directory.split("/")):
            step = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = step
    except OSError as error:
        os.close(fd)
        if error.errno == errno.ENOENT:
            raise TargetError(f"The directory of target {target} does not exist.") from None
        raise TargetError(
            f"The directory of target {target} is reached through a symbolic link or is not a "
            f"directory ({error.strerror}); give its real path."
        ) from None
    return fd


def _check_same_directory(fd: int, directory: str, target: str) -> None:
    """The path `directory` still leads, without symbolic links, to the directory `fd`."""
    again = _open_directory_nofollow(directory, target)
    try:
        before, now = os.fstat(fd), os.fstat(again)
    finally:
        os.close(again)
    if (before.st_dev, before.st_ino) != (now.st_dev, now.st_ino):
        raise TargetError(f"The directory of target {target} was replaced during the restore.")


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
    target untouched, and all-zero blocks stay holes (a sparse file). The directory is opened
    once without following symbolic links, and the temp file is made and renamed through it,
    so nothing is written through a link swapped into the path meanwhile."""
    directory, name = os.path.split(target)
    parent = _open_directory_nofollow(directory, target)
    try:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISDIR(os.stat(name, dir_fd=parent).st_mode):
                raise TargetError(
                    f"Target {target} is a directory; a block point restores to a file or device."
                )
        tmp = f".{name}.zdm-restore-{secrets.token_hex(4)}"
        try:
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=parent
            )
        except OSError as error:
            raise TargetError(
                f"Cannot create the restore target in {directory} ({error.strerror})."
            ) from None
        try:
            try:
                blocks.restore_blocks(
                    repo, table, meta["source_size"], meta["block_size"], keys, fd, True, run,
                    cancel,
                )  # fmt: skip
                os.ftruncate(fd, meta["source_size"])
                os.fchmod(fd, 0o600)
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
            if sync:
                os.fsync(parent)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=parent)
            raise
    finally:
        os.close(parent)
