"""The points of a repository as a history: listing them, their order, their ids, job names.

Shared by the operations: a backup reads its job's history to choose its parent and sequence,
restore and verify check the point ids they are given, prune counts a job's points in order.
`list_points` and `point_ids` are the listing operations themselves. See
docs/repository-format.md, "Point files" and "Order".
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from workers.engine.errors import DataCorrupted, InvalidArgument, PointNotFound, storage_errors
from workers.engine.points import read_meta
from workers.engine.repository import RepositoryDir


@dataclass(frozen=True)
class PointInfo:
    """What `list_points` returns for each point: its point file's metadata. (The service's
    `RecoveryPoint` is a database row that records a point; this is what the repository says.)"""

    id: str
    job: str
    kind: str  # "block" | "directory"
    mode: str  # "full" | "incremental"
    parent: str | None
    created_at: str  # UTC ISO 8601, when the backup started
    finished_at: str
    source: str
    source_size: int
    stored_size: int  # bytes of new objects this point added to the repository
    compression: str | None
    encrypted: bool
    block_size: int
    block_count: int
    sequence: int = 0  # order among the job's points; 0 for points made before sequences

    @classmethod
    def from_meta(cls, meta: dict) -> PointInfo:
        return cls(**{name: meta[name] for name in cls.__dataclass_fields__ if name in meta})

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def list_points(repo_path: str | os.PathLike, job: str | None = None) -> list[PointInfo]:
    """The recovery points in the repository (of `job` if given), oldest first."""
    repo = RepositoryDir.open(repo_path)
    with storage_errors("Reading the repository", repo.root):
        return [PointInfo.from_meta(meta) for meta in ordered_points(repo, job)]


def point_ids(repo_path: str | os.PathLike) -> set[str]:
    """The ids of every point file the repository holds, readable or not (reconciliation:
    a point that is not here is gone). NotARepository when the path holds no repository
    (an unmounted share must not make every point look deleted)."""
    repo = RepositoryDir.open(repo_path)
    with storage_errors("Reading the repository", repo.root):
        return set(repo.point_ids())


def ordered_points(repo: RepositoryDir, job: str | None = None) -> list[dict]:
    """The metadata of every readable point (of `job` if given), in the order they were made."""
    metas = []
    for point_id in repo.point_ids():
        try:
            meta = read_meta(repo.point_path(point_id))
        except (DataCorrupted, PointNotFound):
            continue
        if job is None or meta["job"] == job:
            metas.append(meta)
    metas.sort(key=_point_order)
    return metas


def _point_order(meta: dict) -> tuple:
    """Points of a job in the order they were made: by sequence, never by a clock. Points made
    before sequences existed have none and come first, by their start time."""
    return (meta.get("sequence", 0), meta["created_at"], meta["id"])


_POINT_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$")


def new_point_id(repo: RepositoryDir, created: datetime) -> str:
    """`YYYYMMDDTHHMMSSZ-xxxxxx`: well-formed whatever year the clock says, and not the id of
    any existing point (a clock stepped back may repeat a second)."""
    stamp = (
        f"{created.year:04d}{created.month:02d}{created.day:02d}T"
        f"{created.hour:02d}{created.minute:02d}{created.second:02d}Z-"
    )
    while True:
        point_id = stamp + secrets.token_hex(3)
        if not repo.point_path(point_id).exists():
            return point_id


def check_point_id(point_id: str) -> None:
    """PointNotFound unless `point_id` is a well-formed point id (it names no file otherwise)."""
    if not _POINT_ID.match(point_id or ""):
        raise PointNotFound(f"Recovery point {point_id} does not exist (malformed id).")


def check_job(job: str) -> None:
    """InvalidArgument unless `job` can name a job."""
    if not job or not job.strip() or any(ord(c) < 32 for c in job) or len(job) > 255:
        raise InvalidArgument("The job name must be 1-255 printable characters.")
