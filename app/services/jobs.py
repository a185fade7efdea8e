"""A backup job after registration: how it is shown, changed and deleted."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.http import FieldErrors
from app.i18n import t
from app.models import BackupJob, Center, Partition, Server
from app.services import runs
from app.services.lookup import by_id_or_name
from app.services.runs import job_schedule
from app.services.schedule import Schedule, describe, next_fire_time
from app.timeutil import iso_utc, utcnow


def job_view(job: BackupJob) -> dict:
    """The job as GET /backups shows it (BackupJobSchema)."""
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
                "status": {"current": job.status, "time": runs.status_times(job)},
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


def filtered_jobs(args: dict):
    query = (
        select(BackupJob)
        .join(BackupJob.server)
        .join(Server.center)
        .join(BackupJob.partition)
        .where(BackupJob.deleted_at.is_(None))
    )
    if "center" in args:
        query = query.where(by_id_or_name(Center, args["center"]))
    if "server" in args:
        query = query.where(by_id_or_name(Server, args["server"]))
    if "jobName" in args:
        query = query.where(BackupJob.name == args["jobName"])
    if "mode" in args:
        query = query.where(BackupJob.mode == args["mode"])
    if "partition" in args:
        query = query.where(Partition.name == args["partition"])
    if "status" in args:
        query = query.where(BackupJob.status == args["status"])
    if "repositoryID" in args:
        query = query.where(BackupJob.repository_id == args["repositoryID"])
    return query.order_by(BackupJob.id)


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
