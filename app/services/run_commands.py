"""What the API and the control worker ask of runs and restores: send a run, start, stop and
run a job now, request a restore, purge a job's points. How a run changes state is
`app/services/run_lifecycle.py`; how runs are shown is `app/services/run_views.py`.
"""

from __future__ import annotations

import logging

from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy import select, update

from app.errors import ApiError
from app.extensions import db
from app.models import BackupJob, RecoveryPoint, Restore, Run, User
from app.services import dispatch
from app.services.run_lifecycle import (
    change_state,
    create_run,
    finish_run,
    job_schedule,
    refresh_job_status,
)
from app.services.schedule import next_fire_time
from app.timeutil import utcnow

log = logging.getLogger(__name__)


def _job_name(job_id: int | None) -> str | None:
    job = db.session.get(BackupJob, job_id) if job_id is not None else None
    return job.name if job is not None else None


def dispatch_run(run: Run, expires=None) -> bool:
    """Send a committed, queued run to its server's agent. A broker failure fails the run."""
    job = run.job
    try:
        dispatch.send(
            dispatch.BACKUP_TASK,
            dispatch.server_queue(job.server.name),
            {"run_id": run.id, "job_id": job.id, "job_name": job.name},
            expires=expires,
        )
    except (BrokerError, OSError) as exc:
        log.warning("could not queue run %s: %s", run.id, exc)
        finish_run(run, "failed", f"the message broker is unavailable: {exc}")
        db.session.commit()
        return False
    # A run committed but never sent (the process died in between) has no dispatched_at:
    # the sweeper sends it again.
    db.session.execute(update(Run).where(Run.id == run.id).values(dispatched_at=utcnow()))
    db.session.commit()
    return True


# ---- what the API asks for ---------------------------------------------------------------


def start_job(job: BackupJob) -> None:
    """Activate the schedule; beat fires it from its next fire time."""
    next_run = next_fire_time(job_schedule(job), utcnow())
    if next_run is None:
        raise ApiError(409, "schedule_has_no_future")
    job.active = True
    job.next_run_at = next_run
    refresh_job_status(job)
    db.session.commit()


def stop_job(job: BackupJob) -> list[int]:
    """Deactivate the schedule and cancel unfinished runs; returns the canceled run ids."""
    canceled = deactivate(job)
    db.session.commit()
    return canceled


def deactivate(job: BackupJob) -> list[int]:
    """Stop the schedule; a queued run is canceled at once, a running one is marked
    `canceling` and its agent stops at the engine's next safe point, leaving no partial
    point. Each change is conditional on the state read, so a run finishing meanwhile keeps
    its outcome. Does not commit."""
    job.active = False
    job.next_run_at = None
    canceled = []
    for run in db.session.scalars(
        select(Run).where(Run.job_id == job.id, Run.state.in_(("queued", "running")))
    ).all():
        new_state = "canceled" if run.state == "queued" else "canceling"
        if change_state(run, (run.state,), new_state):
            canceled.append(run.id)
            if new_state == "canceled":
                finish_run(run, "canceled", "canceled by stop")
    refresh_job_status(job)
    return canceled


def run_now(job: BackupJob, requested_by: User) -> Run:
    run = create_run(job, "manual", utcnow(), "queued", requested_by=requested_by)
    if run is None:  # the database allows one unfinished run per job
        raise ApiError(409, "job_already_running", ref=job.id)
    db.session.commit()
    if not dispatch_run(run):
        raise ApiError(503, "service_unavailable", component="broker")
    return run


def _check_agent_key(point: RecoveryPoint, server) -> None:
    """An encrypted point is restored only by an agent holding its master key, as the agents'
    reports say: none, or another than the one it was made with, is a 409. An agent that never
    reported, or a point made before fingerprints were recorded, is left to the agent
    (docs/decisions.md, "Agent capabilities")."""
    if not point.encrypted or server.engine_version is None:
        return
    if server.master_key_fingerprint is None:
        raise ApiError(409, "restore_agent_has_no_key", ref=point.id, server=server.name)
    if point.key_fingerprint is not None and point.key_fingerprint != server.master_key_fingerprint:
        raise ApiError(
            409,
            "restore_key_mismatch",
            ref=point.id,
            server=server.name,
            made_with=point.key_fingerprint,
            holds=server.master_key_fingerprint,
        )


def request_restore(
    point: RecoveryPoint,
    server,
    target: str,
    *,
    overwrite: bool = False,
    requested_by: User | None = None,
) -> Restore:
    if point.state == "missing":  # reconciliation found its file gone
        raise ApiError(409, "point_missing", ref=point.id)
    _check_agent_key(point, server)
    restore = Restore(
        recovery_point=point,
        server=server,
        target=target,
        overwrite=overwrite,
        state="queued",
        requested_by=requested_by,
    )
    db.session.add(restore)
    db.session.commit()
    try:
        dispatch.send(
            dispatch.RESTORE_TASK,
            dispatch.server_queue(server.name),
            {
                "restore_id": restore.id,
                "recovery_point_id": point.id,
                # for Flower's task list, like a run's
                "job_id": point.job_id,
                "job_name": _job_name(point.job_id),
            },
        )
    except (BrokerError, OSError) as exc:
        restore.state, restore.finished_at = "failed", utcnow()
        restore.error_message = f"the message broker is unavailable: {exc}"
        db.session.commit()
        raise ApiError(503, "service_unavailable", component="broker") from None
    return restore


def purge_points(job: BackupJob) -> int:
    """Ask the job's agent to delete the job's recovery points from the repository."""
    points = db.session.scalars(select(RecoveryPoint).where(RecoveryPoint.job_id == job.id)).all()
    dispatch.send(
        dispatch.PURGE_TASK,
        dispatch.server_queue(job.server.name),
        {
            "repository": job.repository.path,
            "engine_job": job.engine_job,
            "job_name": job.name,
        },
    )
    for point in points:
        db.session.delete(point)
    return len(points)
