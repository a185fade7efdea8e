"""Verify: check point files and the objects they need; decode a share of the objects fully.

Each distinct object is checked once, by the first point that needs it; once damage is found, a
second pass names every point that needs a damaged object. Problems are collected, not raised.
See docs/repository-format.md, "Verify".
"""

from __future__ import annotations

import functools
import os
import random
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from workers.engine import block as blocks
from workers.engine import directory as directories
from workers.engine import packs
from workers.engine.errors import (
    DataCorrupted,
    InvalidArgument,
    KeyMissing,
    PointNotFound,
    storage_errors,
)
from workers.engine.history import check_point_id
from workers.engine.keys import RepositoryKeys, resolve_master_key
from workers.engine.objects import decode_object
from workers.engine.points import ENTRY, ZERO_ENTRY, PointFile
from workers.engine.repository import RepositoryDir
from workers.engine.settings import MASTER_KEY_ENV


@dataclass
class VerifyReport:
    points_checked: int = 0
    objects_checked: int = 0
    objects_read: int = 0  # of those, decoded fully (the `read_data` share)
    read_data: float = 0.0  # percent of the distinct objects decoded fully
    problems: list[str] = field(default_factory=list)  # one sentence each
    # (point id, object id hex, pack id hex) for every damaged or missing object a point needs
    damaged: list[tuple[str, str, str]] = field(default_factory=list)
    unreadable_points: list[str] = field(default_factory=list)  # bad, replaced or tampered files
    unreferenced_packs: int = 0  # garbage left by crashed or canceled runs; prune deletes it

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(
    repo_path: str | os.PathLike,
    point_id: str | None = None,
    read_data: bool | float = False,
    master_key: str | bytes | None = None,
    expected: Mapping[str, str] | None = None,
) -> VerifyReport:
    """Check point files and the objects they need; decode a share of the objects fully.

    `read_data`: True (all) or False (none), or a percent 0-100 of the distinct objects, drawn
    at random, to read and decode fully; the others get the cheap check (header, id, sizes).
    `expected`: {point id: digest recorded when it was made}; a point file that does not match
    is reported (replaced or tampered) and not trusted further.

    Problems are collected, not raised: each sentence names the point, or the object and its
    pack; `damaged` and `unreadable_points` say the same for programs.
    """
    percent = _read_data_percent(read_data)
    repo = RepositoryDir.open(repo_path)
    if point_id is not None:
        check_point_id(point_id)
        if not repo.point_path(point_id).exists():
            raise PointNotFound(f"Recovery point {point_id} does not exist.")
        point_ids = [point_id]
    else:
        point_ids = repo.point_ids()
    checker = _Verifier(repo, master_key, percent, expected or {})
    with (
        storage_errors("Reading the repository", repo.root),
        ThreadPoolExecutor(blocks.WORKERS) as pool,
    ):
        checker.pool = pool
        for pid in point_ids:
            checker.check_point(pid)
        checker.find_every_point_needing_damaged_objects()
    return checker.report(whole_repository=point_id is None)


def _read_data_percent(read_data: bool | float) -> float:
    if read_data is True:
        return 100.0
    try:
        percent = float(read_data or 0)
    except (TypeError, ValueError):
        percent = -1.0
    if not 0 <= percent <= 100:
        raise InvalidArgument("The share of data to read must be a percent from 0 to 100.")
    return percent


class _Verifier:
    """One verify: each distinct table entry is checked once (by the first point that needs
    it); when damage is found, a second pass names every point that needs a damaged object."""

    def __init__(self, repo: RepositoryDir, master_key, percent: float, expected: Mapping):
        self.repo = repo
        self.master_key = master_key
        self.percent = percent
        self.expected = expected
        self.pool: ThreadPoolExecutor | None = None
        self._keys: list[RepositoryKeys] = []
        self._random = random.Random()
        self.seen: set[bytes] = set()
        self.damaged: dict[bytes, str] = {}  # entry -> what is wrong with its object
        self.needed_by: dict[bytes, list[str]] = {}
        self.unreadable: list[tuple[str, str]] = []  # (point id, why)
        self.readable: list[str] = []
        self._futures: list = []
        self.points_checked = self.objects_checked = self.objects_read = 0

    def keys_for(self, meta: dict) -> RepositoryKeys | None:
        if not meta["encrypted"]:
            return None
        if not self._keys:
            master = resolve_master_key(self.master_key)
            if master is None:
                raise KeyMissing(
                    f"Verifying encrypted points needs the master key (set {MASTER_KEY_ENV})."
                )
            self._keys.append(self.repo.load_keys(master))
        return self._keys[0]

    def check_point(self, point_id: str) -> None:
        try:
            point = PointFile(self.repo.point_path(point_id))
        except (DataCorrupted, PointNotFound) as error:
            self.unreadable.append((point_id, str(error)))
            return
        with point:
            try:
                point.check_digest(self.expected.get(point_id))
                keys = self.keys_for(point.meta)
                point.check(keys)
            except DataCorrupted as error:
                self.unreadable.append((point_id, str(error)))
                return
            self.points_checked += 1
            self.readable.append(point_id)
            self._check_objects(point, keys)

    def _check_objects(self, point: PointFile, keys) -> None:
        meta, point_id = point.meta, point.name
        if meta["kind"] != "directory":
            self._check_table(
                point_id, point.table(), meta["source_size"], meta["block_size"], keys
            )
            self._collect()
            return
        # The tree is decoded in full whatever the share: its files are listed from it.
        damaged_before = len(self.damaged)
        self._check_table(
            point_id, point.table(), meta["tree_size"], meta["block_size"], keys, decode_all=True
        )
        self._collect()
        if len(self.damaged) > damaged_before:
            return  # the tree itself is damaged: its files cannot be listed
        try:
            for record in directories.TreeReader(self.repo, point, meta, keys):
                if record["type"] == "file":
                    entries = directories.file_entries(record)
                    self._check_table(point_id, entries, record["size"], meta["block_size"], keys)
        except (DataCorrupted, ValueError) as error:
            self.unreadable.append(
                (point_id, f"The file tree of point {point_id} is unreadable ({error}).")
            )
        self._collect()

    def _check_table(self, point_id, entries, size, block_size, keys, decode_all=False) -> None:
        for index, entry in enumerate(entries):
            if entry == ZERO_ENTRY or entry in self.seen:
                continue
            self.seen.add(entry)
            length = min(block_size, size - index * block_size)
            decode = (
                decode_all
                or self.percent >= 100
                or (self.percent > 0 and self._random.random() * 100 < self.percent)
            )
            future = self.pool.submit(self._check_object, entry, length, keys, decode)
            self._futures.append((future, entry, point_id, decode))
            if len(self._futures) >= 64:
                self._collect()

    def _check_object(self, entry: bytes, length: int, keys, decode: bool) -> str | None:
        oid, pack_id, offset, record_length = ENTRY.unpack(entry)
        if not decode:
            problem = packs.record_problem(self.repo, oid, pack_id, offset, record_length)
            return problem and problem.rstrip(".")
        try:
            record = packs.read_record(self.repo, oid, pack_id, offset, record_length)
            decode_object(record, oid, keys, length)
        except DataCorrupted as error:
            return f"{str(error).rstrip('.')} (pack {pack_id.hex()})"
        except KeyMissing:  # a plain point naming encrypted objects: not what was written
            return f"Object {oid.hex()} is encrypted but its point is not (pack {pack_id.hex()})"
        return None

    def _collect(self) -> None:
        for future, entry, point_id, decode in self._futures:
            problem = future.result()
            self.objects_checked += 1
            self.objects_read += decode
            if problem:
                self.damaged[entry] = problem
                self.needed_by[entry] = [point_id]
        self._futures.clear()

    def find_every_point_needing_damaged_objects(self) -> None:
        """Each object was checked for the first point that needs it; name the others too."""
        if not self.damaged:
            return
        for point_id in self.readable:
            try:
                with PointFile(self.repo.point_path(point_id)) as point:
                    for entry in self._entries_of(point):
                        users = self.needed_by.get(entry)
                        if users is not None and point_id not in users:
                            users.append(point_id)
            except (DataCorrupted, PointNotFound, ValueError):
                continue  # its own problems are reported already

    def _entries_of(self, point: PointFile):
        yield from point.table()
        if point.meta["kind"] == "directory":
            keys = self.keys_for(point.meta)
            for record in directories.TreeReader(self.repo, point, point.meta, keys):
                if record["type"] == "file":
                    yield from directories.file_entries(record)

    def report(self, whole_repository: bool) -> VerifyReport:
        # A point deleted by a concurrent prune while we read it is not a problem of the
        # repository.
        exists = functools.cache(lambda pid: self.repo.point_path(pid).exists())
        report = VerifyReport(
            points_checked=self.points_checked,
            objects_checked=self.objects_checked,
            objects_read=self.objects_read,
            read_data=self.percent,
        )
        for point_id, problem in self.unreadable:
            if exists(point_id):
                report.problems.append(problem)
                if point_id not in report.unreadable_points:
                    report.unreadable_points.append(point_id)
        order = {point_id: index for index, point_id in enumerate(self.readable)}
        for entry, problem in self.damaged.items():
            users = sorted(
                (point_id for point_id in self.needed_by[entry] if exists(point_id)),
                key=order.__getitem__,
            )
            if not users:
                continue
            report.problems.append(f"{problem}; needed by {_point_list(users)}.")
            object_id, pack_id = entry[:32].hex(), entry[32:48].hex()
            report.damaged.extend((point_id, object_id, pack_id) for point_id in users)
        if whole_repository:
            referenced = {entry[32:48] for entry in self.seen}
            report.unreferenced_packs = sum(
                1 for pack in self.repo.pack_ids() if pack not in referenced
            )
        return report


def _point_list(point_ids: list[str]) -> str:
    if len(point_ids) == 1:
        return f"point {point_ids[0]}"
    shown = ", ".join(point_ids[:3])
    more = len(point_ids) - 3
    return f"points {shown} and {more} more" if more > 0 else f"points {shown}"
