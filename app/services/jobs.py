"""A backup job after registration: how it is shown, changed and deleted."""

from __future__ import annotations

import functools

from sqlalchemy import Select, bindparam, false, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.http import FieldErrors
from app.i18n import t
from app.models import BackupJob, Center, Partition, Run, Server
from app.services import runs
from app.services.lookup import by_id_or_name
from app.services.pagination import page_of_ids
from app.services.runs import job_schedule
from app.services.schedule import Schedule, describe, next_fire_time
from app.timeutil import iso_utc, utcnow


def job_view(job: BackupJob, times: dict | None = None) -> dict:
    """The job as GET /backups shows it (BackupJobSchema). `times`: the status times of its
    latest started run, when the caller already has them (`job_views`)."""
    schedule = job_schedule(job)
    return {
        "center": {"id": job.server.center.id, "name": job.server.center.name},
        "system": {"id": job.server.id, "name": job.server.name},
        "job": {
            "info": {
                "id": job.id,
                "name": job.name,
                "mode": job.mode,
                "partition": job.partition.name,
                "schedule": {
                    "type": job.schedule_type,
                    "basic": job.schedule_expr,
                    "advanced": describe(schedule),
                    "timezone": job.timezone,
                    "nextRunAt": iso_utc(job.next_run_at),
                },
                "status": {
                    "current": job.status,
                    "time": times if times is not None else runs.status_times(job),
                },
            },
            "lastUpdated": iso_utc(job.updated_at),
        },
        "repository": {
            "id": job.repository.id,
            "type": job.repository.type,
            "path": job.repository.path,
        },
        "options": {
            "autoStart": "yes" if job.auto_start else "no",
            "rotation": job.rotation,
            "compression": job.compression,
            "encryption": job.encryption,
            "excludeDir": list(job.exclude_dirs or []),
            "mailEvent": job.mail_event,
            "networkLimit": job.network_limit,
            "description": job.description,
            "user": {"id": job.user.id, "name": job.user.email},
        },
        "createdBy": runs.user_ref(job.created_by),
    }


def list_jobs(args: dict) -> tuple[list[dict], dict]:
    """GET /backups: a page of live jobs in id order, and its pagination block."""
    page = page_of_ids(BackupJob.id, job_filters(args), args, ("backups", *_filter_key(args)))
    return job_views(page.ids), page.pagination


def job_filters(args: dict) -> list:
    """GET /backups' filters as conditions on backup_jobs' own columns. Center, server and
    partition (names or ids) are resolved to server or partition ids first, in one query."""
    conditions = [BackupJob.deleted_at.is_(None)]
    if "partition" in args:
        query = (
            select(Partition.id).join(Partition.server).where(Partition.name == args["partition"])
        )
        conditions.append(_one_of(BackupJob.partition_id, _resolved(query, args)))
    elif "server" in args or "center" in args:
        conditions.append(_one_of(BackupJob.server_id, _resolved(select(Server.id), args)))
    if "jobName" in args:
        conditions.append(BackupJob.name == args["jobName"])
    if "mode" in args:
        conditions.append(BackupJob.mode == args["mode"])
    if "status" in args:
        conditions.append(BackupJob.status == args["status"])
    if "repositoryID" in args:
        conditions.append(BackupJob.repository_id == args["repositoryID"])
    return conditions


def _resolved(query, args: dict) -> list[int]:
    """The ids `query` selects on servers of the `server` and `center` filters."""
    if "server" in args:
        query = query.where(by_id_or_name(Server, args["server"]))
    if "center" in args:
        query = query.join(Server.center).where(by_id_or_name(Center, args["center"]))
    return list(db.session.scalars(query))


def _one_of(column, ids: list[int]):
    if not ids:
        return false()  # a filter that matches nothing: an empty list, not a 404
    return column == ids[0] if len(ids) == 1 else column.in_(ids)


_PAGING = ("page", "limit", "after")


def _filter_key(args: dict) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in args.items() if k not in _PAGING))


def job_views(ids: list[int]) -> list[dict]:
    """The jobs `ids` as GET /backups shows them, in that order, read in one statement:
    the job, what it shows of its server, center, partition, repository and users, and the
    start and end of its latest started run."""
    if not ids:
        return []
    rows = db.session.execute(_jobs_shown(), {"ids": ids}).all()
    by_id = {job.id: (job, runs.run_times(started, finished)) for job, started, finished in rows}
    return [job_view(*by_id[i]) for i in ids if i in by_id]


@functools.cache
def _jobs_shown() -> Select:
    """The statement of `job_views`, built once: building it and its cache key costs more
    than running it."""
    latest_run = (
        select(Run.id)
        .where(Run.job_id == BackupJob.id, Run.started_at.is_not(None))
        .order_by(Run.started_at.desc(), Run.id.desc())
        .limit(1)
        .correlate(BackupJob)
        .scalar_subquery()
    )
    return (
        select(BackupJob, Run.started_at, Run.finished_at)
        .outerjoin(Run, Run.id == latest_run)
        .options(
            joinedload(BackupJob.server, innerjoin=True).joinedload(Server.center, innerjoin=True),
            joinedload(BackupJob.partition, innerjoin=True),
            joinedload(BackupJob.repository, innerjoin=True),
            joinedload(BackupJob.user, innerjoin=True),
            joinedload(BackupJob.created_by),
        )
        .where(BackupJob.id.in_(bindparam("ids", expanding=True)))
    )


# API field -> (model attribute, how the API shows the stored value)
_UPDATABLE = {
    "jobName": "name",
    "rotation": "rotation",
    "compression": "compression",
    "encryption": "encryption",
    "excludeDir": "exclude_dirs",
    "mailEvent": "mail_event",
    "networkLimit": "network_limit",
    "description": "description",
}


def update_job(job: BackupJob, changes: dict) -> list[dict]:
    """Apply a PUT; returns `updatedFields` (only fields whose value really changed).

    A schedule change is honoured from the next fire time: `next_run_at` is recomputed
    here, and beat reads it from the database on its next tick.
    """
    if changes.get("excludeDir") and job.partition.kind == "block":
        raise FieldErrors({"excludeDir": [t("exclude_dir_on_block", partition=job.partition.name)]})
    updated = []
    for field, attribute in _UPDATABLE.items():
        if field in changes and getattr(job, attribute) != changes[field]:
            updated.append(
                {"field": field, "previous": getattr(job, attribute), "new": changes[field]}
            )
            setattr(job, attribute, changes[field])
    if "schedule" in changes:
        updated.extend(_change_schedule(job, changes["schedule"]))
    if updated:
        job.updated_at = utcnow()
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise FieldErrors(
            {
                "jobName": [
                    t(
                        "job_exists",
                        server=job.server.name,
                        partition=job.partition.name,
                        name=changes["jobName"],
                    )
                ]
            }
        ) from None
    return updated


def _change_schedule(job: BackupJob, schedule: Schedule) -> list[dict]:
    before = {"type": job.schedule_type, "description": job.schedule_expr, "timezone": job.timezone}
    after = {
        "type": schedule.type,
        "description": schedule.expression,
        "timezone": schedule.timezone,
    }
    if before == after:
        return []
    job.schedule_type, job.schedule_expr, job.timezone = (
        schedule.type,
        schedule.expression,
        schedule.timezone,
    )
    if job.active or job.status == "completed":  # a stopped job stays stopped
        job.active = True
        if job.status == "completed":
            job.status = "scheduled"
        job.next_run_at = next_fire_time(schedule, utcnow())
    return [{"field": "schedule", "previous": before, "new": after}]


def delete_job(job: BackupJob, purge: bool) -> None:
    """Stop the job (a running run is canceled), optionally purge its recovery points, and
    mark it deleted. The row stays, so its id is never handed out again and its runs and
    (unless purged) recovery points stay listed and restorable."""
    if purge:  # first: with the broker down nothing changes and the caller gets 503
        runs.purge_points(job)
    runs.deactivate(job)
    job.deleted_at = utcnow()
    db.session.commit()
