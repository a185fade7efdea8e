"""Prune: keep the newest points of a job, delete the rest and every pack nothing needs any more.

Garbage collection runs under the exclusive repository lock; running backups keep what they
need alive through their claim journals. See docs/repository-format.md, "Locks and garbage
collection".
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from workers.engine.errors import DataCorrupted, InvalidArgument, PointNotFound, storage_errors
from workers.engine.fs import fsync_dir
from workers.engine.history import check_job, ordered_points
from workers.engine.locks import RepositoryLock
from workers.engine.operations import clean_leftovers, live_operations
from workers.engine.packs import PACK_ID_SIZE
from workers.engine.points import PointFile
from workers.engine.repository import RepositoryDir


@dataclass
class PruneReport:
    job: str
    kept: list[str] = field(default_factory=list)
    removed_points: list[str] = field(default_factory=list)
    kept_in_use: list[str] = field(default_factory=list)  # being restored right now
    unknown: list[str] = field(default_factory=list)  # of the job, but not in the caller's order
    removed_packs: int = 0
    freed_bytes: int = 0
    # Why some garbage was left (no exception: the points above are removed all the same)
    problems: list[str] = field(default_factory=list)


def prune(
    repo_path: str | os.PathLike,
    job: str,
    keep: int,
    lock_timeout: float | None = None,
    order: Sequence[str] | None = None,
) -> PruneReport:
    """Keep the `keep` newest points of `job`; delete the rest and every unneeded object.

    `order`: the job's point ids, oldest first, as the caller recorded them (the service's
    database). Then only those points are counted and deleted, in that order; a point of the
    job that the caller does not know (one planted in the repository) is left alone and listed
    in `report.unknown`, so it can never push a real point out. Without it, the points' own
    sequence numbers decide.

    Runs under the exclusive repository lock; running backups keep their objects alive through
    their claim journals (see docs/repository-format.md, "Locks and garbage collection"). Once
    it has started deleting, it always returns its report: `removed_points` are exactly the
    point files it deleted, and `problems` says why garbage was left, if any was.
    """
    check_job(job)
    if keep < 0:
        raise InvalidArgument("The number of points to keep must be zero or more.")
    repo = RepositoryDir.open(repo_path)
    report = PruneReport(job=job)
    # Opening the lock files writes (they are opened for writing, created if absent): on a
    # read-only repository this is where prune stops, before anything was removed.
    with storage_errors("Pruning the repository", repo.root):
        lock = RepositoryLock(repo.root)
    try:
        lock.exclusive(lock_timeout)
        try:
            with storage_errors("Pruning the repository", repo.root):
                clean_leftovers(repo)
                running = live_operations(repo)
                points = ordered_points(repo, job)
            if order is not None:
                points = _in_caller_order(points, order, report)
            _remove_points(repo, points, keep, running, report)
            _collect_packs(repo, running, report)
        finally:
            lock.release()
    finally:
        lock.close()
    return report


def _in_caller_order(points: list[dict], order: Sequence[str], report: PruneReport) -> list[dict]:
    by_id = {meta["id"]: meta for meta in points}
    known = set(order)
    report.unknown = [point_id for point_id in by_id if point_id not in known]
    return [by_id[point_id] for point_id in order if point_id in by_id]


def _remove_points(repo: RepositoryDir, points: list[dict], keep: int, running, report):
    restoring = set()
    for directory in running:
        with contextlib.suppress(FileNotFoundError):
            restoring.add((directory / "restoring").read_text().strip())
    keep_ids = {meta["id"] for meta in points[max(0, len(points) - keep) :]} if keep else set()
    for meta in points:
        point_id = meta["id"]
        if point_id in keep_ids:
            report.kept.append(point_id)
        elif point_id in restoring:
            report.kept_in_use.append(point_id)
        else:
            try:
                os.unlink(repo.point_path(point_id))
            except FileNotFoundError:
                continue  # someone else removed it meanwhile
            except OSError as error:
                report.problems.append(
                    f"Point {point_id} could not be removed ({error.strerror}); it is kept."
                )
                report.kept.append(point_id)
                continue
            report.removed_points.append(point_id)
    if report.removed_points:
        try:
            fsync_dir(repo.points_dir)
        except OSError as error:
            report.problems.append(f"Syncing the points directory failed ({error.strerror}).")


def _collect_packs(repo: RepositoryDir, running, report: PruneReport) -> None:
    """Delete every pack no remaining point and no live operation needs; when a remaining
    point file cannot be read, delete none (what it needs is unknown) and say so."""
    try:
        live = _live_packs(repo, running)
    except DataCorrupted as error:
        report.problems.append(str(error))
        return
    except OSError as error:
        report.problems.append(
            f"Prune could not list the packs still needed ({error.strerror}) and deleted none."
        )
        return
    try:
        for pack_id in list(repo.pack_ids()):
            if pack_id in live:
                continue
            path = repo.pack_path(pack_id)
            with contextlib.suppress(FileNotFoundError):
                size = path.stat().st_size
                path.unlink()
                report.removed_packs += 1
                report.freed_bytes += size
    except OSError as error:
        report.problems.append(f"Deleting unneeded packs stopped early ({error.strerror}).")


def _live_packs(repo: RepositoryDir, running) -> set[bytes]:
    live: set[bytes] = set()
    for point_id in repo.point_ids():
        try:
            with PointFile(repo.point_path(point_id)) as point:
                live.update(entry[32:48] for entry in point.table())
                # a directory point also needs the packs of its files' blocks, in its metadata
                live.update(bytes.fromhex(p) for p in point.meta.get("packs", ()))
        except PointNotFound:
            continue
        except (DataCorrupted, ValueError) as error:
            raise DataCorrupted(
                f"Point file {point_id} is unreadable, so prune cannot tell which packs it "
                f"needs and deleted no packs ({str(error).rstrip('.')}).",
                point_id,
            ) from None
    for directory in running:
        with contextlib.suppress(FileNotFoundError):
            journal = (directory / "refs").read_bytes()
            live.update(
                journal[start : start + PACK_ID_SIZE]
                for start in range(0, len(journal), PACK_ID_SIZE)
            )
    return live
