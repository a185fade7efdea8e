"""How the API shows runs, recovery points and restores (the views of their answers)."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import BackupJob, RecoveryPoint, Restore, Run, User
from app.timeutil import iso_utc, utcnow


def user_ref(user: User | None) -> dict | None:
    """Who registered a job or asked for a run or restore (None once that user is gone)."""
    return {"id": user.id, "email": user.email} if user is not None else None


def job_ref(job: BackupJob) -> dict:
    """A job as runs and recovery points name it, deleted or not."""
    return {"id": job.id, "name": job.name, "deleted": job.deleted_at is not None}


def run_view(run: Run) -> dict:
    return {
        "id": run.id,
        "job": job_ref(run.job),
        "trigger": run.trigger,
        "requestedBy": user_ref(run.requested_by),
        "scheduledFor": iso_utc(run.scheduled_for),
        "state": "running" if run.state == "canceling" else run.state,
        "startedAt": iso_utc(run.started_at),
        "finishedAt": iso_utc(run.finished_at),
        "bytesRead": run.bytes_read,
        "bytesWritten": run.bytes_written,
        "bytesTotal": run.bytes_total,
        "percent": round(run.percent, 1),
        "speed": round(run.speed),
        "errorMessage": run.error_message,
        "log": list(run.log or []),
    }


def latest_started_run(job_id: int) -> Run | None:
    return db.session.scalar(
        select(Run)
        .where(Run.job_id == job_id, Run.started_at.is_not(None))
        .order_by(Run.started_at.desc(), Run.id.desc())
        .limit(1)
    )


def status_times(job: BackupJob) -> dict:
    run = latest_started_run(job.id)
    if run is None:
        return run_times(None, None)
    return run_times(run.started_at, run.finished_at)


def run_times(started_at, finished_at) -> dict:
    """`status.time` of a job from its latest started run (none: all null)."""
    if started_at is None:
        return {"start": None, "elapsed": None, "end": None}
    end = finished_at or utcnow()
    return {
        "start": iso_utc(started_at),
        "elapsed": int((end - started_at).total_seconds()),
        "end": iso_utc(finished_at),
    }


def recovery_point_view(point: RecoveryPoint) -> dict:
    return {
        "id": point.id,
        "runId": point.run_id,
        "mode": point.mode,
        "createdAt": iso_utc(point.created_at),
        "sourceSize": point.source_size,
        "storedSize": point.stored_size,
        "compression": point.compression,
        "encrypted": point.encrypted,
        "state": point.state,
        "damaged": point.damaged,
    }


def listed_point_view(point: RecoveryPoint) -> dict:
    """A point with the job that made it (null for points whose job was removed before
    deleting kept jobs) and its partition, so a point of a deleted job can be told apart."""
    job = db.session.get(BackupJob, point.job_id) if point.job_id is not None else None
    return {
        **recovery_point_view(point),
        "partition": point.partition_name,
        "job": job_ref(job) if job is not None else None,
    }


def restore_view(restore: Restore) -> dict:
    return {
        "id": restore.id,
        "recoveryPoint": restore.recovery_point_id,
        "server": {"id": restore.server.id, "name": restore.server.name},
        "target": restore.target,
        "requestedBy": user_ref(restore.requested_by),
        "state": restore.state,
        "startedAt": iso_utc(restore.started_at),
        "finishedAt": iso_utc(restore.finished_at),
        "bytesTotal": restore.bytes_total,
        "bytesRestored": restore.bytes_restored,
        "percent": round(restore.percent, 1),
        "speed": round(restore.speed),
        "errorMessage": restore.error_message,
        "log": list(restore.log or []),
    }
