"""Where a restore may write (SPEC "Restores"): the rules, as plain functions.

The agent runs as root, so the target of a restore is a policy, checked twice with the same
rules: by the API (`check_request`) with what the service knows, and by the agent
(`check_on_agent`) right before the engine is called, with what it sees on its own machine.

Allowed, and nothing else:
- **new**: a file or directory strictly under a restore root (`ZDM_RESTORE_ROOTS`); one that
  exists needs `overwrite`. Operator or admin.
- **in place** (disaster recovery): onto a partition the agent serves, named as the partition
  (`/dev/sda1`); the agent writes the path it serves it from. Admin only, with `overwrite`;
  not while a run or another restore of the partition is queued or running, nor, for a block
  device, while it is mounted or otherwise in use.
Never: a repository or anything in it, the service's database, /proc, /sys, /dev, a served
partition reached by its path, the target of another restore still in progress, a device or
other special file, or anything a symbolic link leads to outside the roots.

What each side knows: the API sees the target's shape, the restore roots as configured for the
service (so `ZDM_RESTORE_ROOTS` must be set alike on web and agents), the server's partitions,
the repositories and the active runs and restores in the database, and the caller's role. It
cannot see the agent's file system. The agent checks everything again with its own roots and
served partitions, resolves symbolic links (realpath) on its own file system, looks at what
exists, at who may change the directories on the way, and at its mount table. The engine then
writes only through the directory it checked (`workers/engine/restore.py`, `_restore_to_file`).
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.engine import make_url

from app.extensions import db
from app.i18n import MESSAGES, t
from app.models import UNFINISHED_RUN_STATES, BackupJob, Repository, Restore, Run, Server

SYSTEM_TREES = ("/proc", "/sys", "/dev")
MAX_TARGET_LENGTH = 1024  # the column's size; PATH_MAX is 4096
MAX_NAME_BYTES = 255  # NAME_MAX of Linux file systems
UNFINISHED_RESTORE_STATES = ("queued", "running")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RESTORING_ROLES = ("operator", "admin")


class RestoreRefused(Exception):
    """A target the policy refuses: an HTTP status for the API and a message key of
    `app.i18n` whose sentence names the rule."""

    def __init__(self, status: int, key: str, **params):
        super().__init__(key)
        self.status, self.key, self.params = status, key, params

    def message(self) -> str:
        """The sentence in the request's language (Korean outside a request)."""
        return t(self.key, **self.params)

    def sentence(self) -> str:
        """The sentence in English, as agents record their errors."""
        return MESSAGES[self.key][1].format(**self.params)


@dataclass(frozen=True)
class ServedPartition:
    name: str
    path: str | None = None  # where it is served from, when known (mountpoint, agent settings)


@dataclass(frozen=True)
class Place:
    """What the rules allow and protect, as one side knows it."""

    roots: tuple[str, ...]
    partitions: tuple[ServedPartition, ...] = ()
    repositories: tuple[str, ...] = ()
    database_files: tuple[str, ...] = ()
    busy_partitions: frozenset[str] = frozenset()  # names with a run or restore in progress
    active_targets: tuple[str, ...] = ()  # targets of the server's other unfinished restores

    def partition_named(self, name: str) -> ServedPartition | None:
        return next((p for p in self.partitions if p.name == name), None)

    def resolved(self) -> Place:
        """The same place with every path resolved on this machine's file system."""
        return replace(
            self,
            roots=tuple(os.path.realpath(root) for root in self.roots),
            partitions=tuple(
                replace(p, path=os.path.realpath(p.path)) if p.path else p for p in self.partitions
            ),
            repositories=tuple(os.path.realpath(path) for path in self.repositories),
            database_files=tuple(os.path.realpath(path) for path in self.database_files),
            active_targets=tuple(os.path.realpath(path) for path in self.active_targets),
        )


@dataclass(frozen=True)
class Destination:
    """Where the engine writes: the target (resolved, on the agent) or, in place, the path the
    named partition is served from."""

    path: str
    partition: str | None = None


# ---- the rules ---------------------------------------------------------------------------


def normalised_target(target: str) -> str:
    """`target` as an absolute, normalised path (`//` and `/./` collapsed); a relative path,
    a `..` component, control characters and over-long paths or names are refused (422)."""
    if not isinstance(target, str) or not target.startswith("/"):
        raise RestoreRefused(422, "path_not_absolute")
    if _CONTROL.search(target):
        raise RestoreRefused(422, "path_control_characters")
    if ".." in target.split("/"):
        raise RestoreRefused(422, "path_has_dotdot")
    too_long = len(target) > MAX_TARGET_LENGTH or any(
        len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for name in target.split("/")
    )
    if too_long:
        raise RestoreRefused(422, "path_too_long", max=MAX_TARGET_LENGTH, name_max=MAX_NAME_BYTES)
    return "/" + posixpath.normpath(target).lstrip("/")


def check_request(target: str, overwrite: bool, role: str | None, place: Place) -> Destination:
    """The rules anyone can check without the agent's file system. `role` is the requester's
    (None on an agent when the user is unknown: then only restores to new paths pass)."""
    target = normalised_target(target)
    partition = place.partition_named(target)
    if partition is not None:
        return _in_place(partition, overwrite, role, place)
    if role is not None and role not in _RESTORING_ROLES:
        raise RestoreRefused(403, "restore_role", role=role)
    _refuse_protected(target, target, place)
    _root_of(target, place.roots, "restore_target_outside_roots", target=target)
    return Destination(target)


def check_on_agent(target: str, overwrite: bool, role: str | None, place: Place) -> Destination:
    """`check_request` with the agent's own facts, then what only the agent can see: where
    symbolic links lead, what exists, who may change the directories on the way, whether a
    device is in use. Returns where the engine must write (a path without symbolic links)."""
    destination = check_request(target, overwrite, role, place)
    if destination.partition is not None:
        return _partition_not_in_use(destination)
    real = place.resolved()
    resolved = _resolve(destination.path)
    through_link = resolved != destination.path
    shown = f"{destination.path} (which leads to {resolved})" if through_link else resolved
    _refuse_protected(resolved, shown, real)
    if through_link:
        _root_of(resolved, real.roots, "restore_target_symlink_escape",
                 target=destination.path, resolved=resolved)  # fmt: skip
    else:
        _root_of(resolved, real.roots, "restore_target_outside_roots", target=shown)
    _refuse_existing(resolved, shown, overwrite)
    unsafe = unsafe_directory(posixpath.dirname(resolved))
    if unsafe is not None:
        raise RestoreRefused(422, "restore_target_unsafe_directory", directory=unsafe, target=shown)
    return Destination(resolved)


def _in_place(partition: ServedPartition, overwrite: bool, role, place: Place) -> Destination:
    if role != "admin":
        raise RestoreRefused(403, "restore_in_place_admin_only", partition=partition.name)
    if not overwrite:
        raise RestoreRefused(422, "restore_in_place_needs_overwrite", partition=partition.name)
    if partition.name in place.busy_partitions:
        raise RestoreRefused(409, "restore_partition_busy", partition=partition.name)
    return Destination(partition.path or partition.name, partition.name)


def _refuse_protected(path: str, shown: str, place: Place) -> None:
    for tree in SYSTEM_TREES:
        if _overlap(path, tree):
            raise RestoreRefused(422, "restore_target_system", target=shown)
    for repository in place.repositories:
        if _overlap(path, repository):
            raise RestoreRefused(
                422, "restore_target_repository", target=shown, repository=repository
            )
    for database in place.database_files:
        if _overlap(path, database):
            raise RestoreRefused(422, "restore_target_database", target=shown, database=database)
    for partition in place.partitions:
        if partition.path and _within(partition.path, path):
            raise RestoreRefused(
                422, "restore_target_partition_source", target=shown, partition=partition.name
            )
    for other in place.active_targets:
        if _overlap(path, other):
            raise RestoreRefused(409, "restore_target_in_use", target=shown, other=other)


def _root_of(path: str, roots: Iterable[str], key: str, **params) -> str:
    """The root `path` lies strictly under."""
    roots = tuple(roots)
    for root in roots:
        if path != root and _within(path, root):
            return root
    raise RestoreRefused(422, key, roots=", ".join(roots) or "-", **params)


def _within(path: str, base: str) -> bool:
    """`path` is `base` or lies inside it (both normalised)."""
    return path == base or path.startswith(base.rstrip("/") + "/")


def _overlap(a: str, b: str) -> bool:
    return _within(a, b) or _within(b, a)


# ---- what only the agent can see ---------------------------------------------------------


def _resolve(target: str) -> str:
    """The target with symbolic links resolved: realpath of the target when it exists,
    otherwise of its directory (which must exist) joined with its name."""
    if os.path.lexists(target):
        return os.path.realpath(target)
    directory, name = posixpath.split(target)
    if not os.path.isdir(directory):
        raise RestoreRefused(422, "restore_target_no_directory", target=target)
    return posixpath.join(os.path.realpath(directory), name)


def _refuse_existing(resolved: str, shown: str, overwrite: bool) -> None:
    try:
        info = os.lstat(resolved)
    except FileNotFoundError:
        return
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
        raise RestoreRefused(422, "restore_target_special", target=shown)
    if not overwrite:
        raise RestoreRefused(409, "restore_target_exists", target=shown)


def unsafe_directory(directory: str) -> str | None:
    """The first directory from / down to `directory` (resolved) whose entries someone other
    than root or this process could rename or replace, or None. Trusted: owned by root or us,
    writable by no other group than root's or ours (a user's private group), and by no one
    else, unless it is sticky (as /tmp) and the entry on the way is root's or ours."""
    users, groups = {0, os.geteuid()}, {0, os.getegid()}

    def shared(info: os.stat_result) -> bool:
        return bool(
            info.st_uid not in users
            or (info.st_mode & stat.S_IWGRP and info.st_gid not in groups)
            or info.st_mode & stat.S_IWOTH
        )

    current, info = "/", os.lstat("/")
    names = [name for name in directory.split("/") if name]
    for name in names:
        child = posixpath.join(current, name)
        try:
            child_info = os.lstat(child)
        except OSError:
            return child
        if not stat.S_ISDIR(child_info.st_mode):
            return child  # a symbolic link swapped in since the path was resolved
        if shared(info) and not (info.st_mode & stat.S_ISVTX and child_info.st_uid in users):
            return current
        current, info = child, child_info
    return current if shared(info) and not info.st_mode & stat.S_ISVTX else None


def _partition_not_in_use(destination: Destination) -> Destination:
    path = os.path.realpath(destination.path)
    if block_device_in_use(path):
        raise RestoreRefused(
            409, "restore_partition_mounted", partition=destination.partition, device=path
        )
    return Destination(path, destination.partition)


def mounted_sources(mounts_file: str = "/proc/self/mounts") -> list[str]:
    """The sources (first field) of a mount table, with its octal escapes (`\\040`) undone."""
    try:
        with open(mounts_file, encoding="utf-8", errors="surrogateescape") as table:
            lines = table.read().splitlines()
    except OSError:
        return []
    sources = []
    for line in lines:
        fields = line.split()
        if fields:
            sources.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[0]))
    return sources


def block_device_in_use(path: str, mounts_file: str = "/proc/self/mounts") -> bool:
    """Whether block device `path` (or a partition of it) is mounted, by the mount table, or
    held by the system (swap, device mapper, md), which the kernel tells by refusing an
    exclusive open with EBUSY. Not a block device: False."""
    device = _block_device(path)
    if device is None:
        return False
    for source in mounted_sources(mounts_file):
        mounted = _block_device(source)
        if mounted is not None and (mounted == device or _partition_of(mounted, device)):
            return True
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_EXCL))
    except OSError as error:
        return error.errno == errno.EBUSY
    return False


def _block_device(path: str) -> int | None:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_rdev if stat.S_ISBLK(info.st_mode) else None


def _partition_of(child: int, disk: int) -> bool:
    """Whether device `child` is a partition of `disk` (sysfs lists partitions inside their
    disk's directory)."""

    def sysfs(number: int) -> str:
        return os.path.realpath(f"/sys/dev/block/{os.major(number)}:{os.minor(number)}")

    return sysfs(child).startswith(sysfs(disk) + "/")


# ---- the facts, from the database and settings -------------------------------------------


def database_files(url) -> tuple[str, ...]:
    """The SQLite file of the service's database (a URL) and its companions; none for a
    database server."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return ()
    path = os.path.abspath(parsed.database)
    return (path, *(path + suffix for suffix in ("-wal", "-shm", "-journal")))


def service_place(
    server: Server,
    roots: Iterable[str],
    served: Iterable[ServedPartition] | None = None,
    restore_id: int | None = None,
) -> Place:
    """The place as the database knows it: `served` partitions when the caller knows where
    they are served from (an agent), else the server's partitions as registered; the
    restore `restore_id` itself is not counted as in progress."""
    if served is None:
        served = [ServedPartition(p.name, p.mountpoint) for p in server.partitions]
    others = db.session.scalars(
        select(Restore).where(
            Restore.server_id == server.id,
            Restore.state.in_(UNFINISHED_RESTORE_STATES),
            Restore.id != (restore_id or 0),
        )
    ).all()
    running_partitions = db.session.scalars(
        select(BackupJob.partition_id)
        .join(Run, Run.job_id == BackupJob.id)
        .where(BackupJob.server_id == server.id, Run.state.in_(UNFINISHED_RUN_STATES))
    ).all()
    busy = {p.name for p in server.partitions if p.id in set(running_partitions)}
    busy.update(restore.target for restore in others)
    return Place(
        roots=tuple(roots),
        partitions=tuple(served),
        repositories=tuple(db.session.scalars(select(Repository.path)).all()),
        database_files=database_files(db.engine.url),
        busy_partitions=frozenset(busy),
        active_targets=tuple(r.target for r in others if r.target.startswith("/")),
    )
