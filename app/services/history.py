"""The past of backup jobs as the lists show it: runs (`/backups/histories`,
`/backups/{id}/runs`) and recovery points (`/recovery-points`, `/backups/{id}/recovery-points`).

Like the job list (app/services/jobs.py), each list is paged by id over its own table:
filters that name another table are turned into conditions on the table's columns, and
the rows of a page are loaded by id with what their views show, in one statement.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.models import BackupJob, RecoveryPoint, Run, Server
from app.services import run_views
from app.services.lookup import by_id_or_name
from app.services.pagination import page_of_ids

_PAGING = ("page", "limit", "after")


def list_runs(args: dict, job_id: int | None = None) -> tuple[list[dict], dict]:
    """Runs newest first: those of job `job_id`, or of every job with the history filters
    (`jobID`, `jobName`, `server`, `state`, `trigger`)."""
    if job_id is not None:
        conditions, key = [Run.job_id == job_id], ("runs", job_id)
    else:
        conditions, key = _run_filters(args), ("histories", *_filter_key(args))
    page = page_of_ids(Run.id, conditions, args, key, newest_first=True)
    shown = (
        select(Run)
        .options(joinedload(Run.job), joinedload(Run.requested_by))
        .where(Run.id.in_(page.ids))
        .order_by(Run.id.desc())
    )
    return [run_views.run_view(run) for run in db.session.scalars(shown)], page.pagination


def latest_run(job_id: int) -> Run | None:
    """The job's newest run, finished or not (runs of a job never overlap)."""
    return db.session.scalar(
        select(Run).where(Run.job_id == job_id).order_by(Run.id.desc()).limit(1)
    )


def _run_filters(args: dict) -> list:
    conditions = []
    if "jobID" in args:
        conditions.append(Run.job_id == args["jobID"])
    if "jobName" in args:  # deleted jobs too: their runs stay in the history
        conditions.append(
            Run.job_id.in_(select(BackupJob.id).where(BackupJob.name == args["jobName"]))
        )
    if "server" in args:
        servers = select(Server.id).where(by_id_or_name(Server, args["server"]))
        conditions.append(
            Run.job_id.in_(select(BackupJob.id).where(BackupJob.server_id.in_(servers)))
        )
    if "state" in args:
        conditions.append(Run.state == args["state"])
    if "trigger" in args:
        conditions.append(Run.trigger == args["trigger"])
    return conditions


def list_points(args: dict, job_id: int | None = None) -> tuple[list, dict]:
    """Recovery points newest first: those of job `job_id` (as RecoveryPoint objects), or
    of live and deleted jobs alike with the filters `job`, `server`, `repository` (as
    listed, with their job)."""
    if job_id is not None:
        conditions, key = [RecoveryPoint.job_id == job_id], ("points", job_id)
    else:
        conditions, key = _point_filters(args), ("all-points", *_filter_key(args))
    page = page_of_ids(RecoveryPoint.id, conditions, args, key, newest_first=True)
    points = list(
        db.session.scalars(
            select(RecoveryPoint)
            .where(RecoveryPoint.id.in_(page.ids))
            .order_by(RecoveryPoint.id.desc())
        )
    )
    if job_id is not None:
        return [run_views.recovery_point_view(p) for p in points], page.pagination
    job_ids = {p.job_id for p in points if p.job_id is not None}
    if job_ids:  # into the session's identity map, where listed_point_view finds them
        db.session.scalars(select(BackupJob).where(BackupJob.id.in_(job_ids))).all()
    return [run_views.listed_point_view(p) for p in points], page.pagination


def _point_filters(args: dict) -> list:
    conditions = []
    if "job" in args:
        conditions.append(RecoveryPoint.job_id == args["job"])
    if "server" in args:
        servers = select(Server.id).where(by_id_or_name(Server, args["server"]))
        conditions.append(RecoveryPoint.server_id.in_(servers))
    if "repository" in args:
        conditions.append(RecoveryPoint.repository_id == args["repository"])
    return conditions


def _filter_key(args: dict) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in args.items() if k not in _PAGING))
