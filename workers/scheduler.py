"""The beat scheduler: `celery -A workers beat -S workers.scheduler:ZdmScheduler`.

Every tick (at most a second apart) it reads the due jobs from the database, so jobs
registered, changed, stopped or deleted through the API are honoured from their next fire
time without restarting beat.

Guarantees, and what gives them:
- Exactly one run per fire time, with any number of beats: a job is claimed by a
  conditional UPDATE that moves `next_run_at` from the fire time it read to the next one;
  only one beat's UPDATE matches. The run record's unique (job, fire time, trigger) is the
  second guard, and the agent only starts a run that is still `queued` (redelivery).
- No overlap: a fire time that finds an unfinished run records a `skipped` run.
- Misfires (beat was down): the newest missed fire time runs once when it is within
  `ZDM_MISFIRE_GRACE_SECONDS`, otherwise one `missed` run is recorded; either way
  `next_run_at` moves to the future.
- Runs do not pile up: the message expires at the job's next fire time, and a run still
  queued then is recorded `missed` (agent offline).
"""

from __future__ import annotations

import logging
from datetime import datetime

from celery.beat import Scheduler
from flask import current_app
from sqlalchemy import select, update

from app.extensions import db
from app.models import BackupJob, Run
from app.services.run_lifecycle import (
    create_run,
    expire_unstarted_runs,
    job_schedule,
    refresh_job_status,
    unfinished_run,
)
from app.services.runs import dispatch_run
from app.services.schedule import next_fire_time
from app.services.verification import fire_due_verifications
from app.timeutil import iso_utc, utcnow

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
_MAX_JOBS_PER_TICK = 500
_MAX_CATCH_UP = 100_000  # fire times skipped over after a long outage, per job
OVERLAP = "the previous run of this job was still queued or running"


def due_jobs(now: datetime) -> list[tuple[int, datetime]]:
    rows = db.session.execute(
        select(BackupJob.id, BackupJob.next_run_at)
        .where(BackupJob.active.is_(True), BackupJob.next_run_at <= now)
        .order_by(BackupJob.next_run_at)
        .limit(_MAX_JOBS_PER_TICK)
    )
    return [(row.id, row.next_run_at) for row in rows]


def fire_due_jobs(now: datetime | None = None) -> list[Run]:
    """Turn every due job into a run; returns the runs this call recorded."""
    now = now or utcnow()
    recorded = []
    for job_id, fire_at in due_jobs(now):
        try:
            run = fire_job(job_id, fire_at, now)
        except Exception:
            log.exception("firing job %s failed", job_id)
            db.session.rollback()
            continue
        if run is not None:
            recorded.append(run)
    return recorded


def fire_job(job_id: int, fire_at: datetime, now: datetime) -> Run | None:
    job = db.session.get(BackupJob, job_id)
    if job is None:
        return None
    schedule = job_schedule(job)
    newest, following = fire_at, next_fire_time(schedule, fire_at)
    for _ in range(_MAX_CATCH_UP):
        if following is None or following > now:
            break
        newest, following = following, next_fire_time(schedule, following)
    else:
        following = next_fire_time(schedule, now)

    claimed = db.session.execute(
        update(BackupJob)
        .where(
            BackupJob.id == job_id,
            BackupJob.next_run_at == fire_at,
            BackupJob.active.is_(True),
        )
        .values(next_run_at=following, active=following is not None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        db.session.rollback()  # another beat fired it, or the job changed under us
        return None
    db.session.refresh(job)

    expire_unstarted_runs(job, now)
    state, reason = _outcome(job, newest, now)
    run = create_run(job, "schedule", newest, state, error_message=reason)
    if run is None and state == "queued":
        # A manual run started between our check and the insert: this fire time overlaps.
        state, reason = "skipped", OVERLAP
        run = create_run(job, "schedule", newest, state, error_message=reason)
    if run is None:
        # This fire time already has its run (a schedule change put next_run_at back on
        # it): keep the claim, so the job moves on instead of being claimed forever.
        db.session.commit()
        return None
    if reason:
        run.log = [f"{iso_utc(now)} {reason}"]
    refresh_job_status(job)
    db.session.commit()
    if state == "queued":
        dispatch_run(run, expires=following)
    return run


def _outcome(job: BackupJob, fire_time: datetime, now: datetime) -> tuple[str, str | None]:
    grace = current_app.config["ZDM_MISFIRE_GRACE_SECONDS"]
    late = (now - fire_time).total_seconds()
    if late > grace:
        return "missed", (
            f"beat was not running at {iso_utc(fire_time)}; the misfire grace is {grace} s"
        )
    if unfinished_run(job.id) is not None:
        return "skipped", OVERLAP
    return "queued", None


class ZdmScheduler(Scheduler):
    """Celery beat's Scheduler, plus the database-driven backup schedule."""

    def __init__(self, *args, **kwargs):
        from workers.app_context import flask_app

        self.flask_app = flask_app
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs):
        with self.flask_app.app_context():
            try:
                fire_due_jobs()
                fire_due_verifications(utcnow())
            except Exception:  # the database may be down: log, and try again next tick
                log.exception("reading due jobs failed")
                db.session.rollback()
            finally:
                db.session.remove()
        return min(super().tick(*args, **kwargs), TICK_SECONDS)
