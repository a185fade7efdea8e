"""How a run (and a restore) changes state: the rules every process applies, written once.

Beat records and expires runs, an agent claims them and keeps their lease, the control worker
declares lost the ones whose lease ran out, the API starts and stops them. Each of them calls
this module, so a rule changes in one place:

- Every state change is conditional on the state it was read in (an atomic UPDATE), so two
  processes racing over a run — an agent claiming it while beat expires it, two sweepers —
  change it once; the loser sees `False` and leaves the run alone.
- `queued -> running` is a claim: exactly one agent gets it, a redelivered message finds it
  taken. The claim starts the lease.
- The lease is stamped and judged with the database's clock (`db_now`): an agent renews it
  every `lease_renew_seconds()`; a run without a renewal for `lease_seconds()` is lost.
- A queued run nobody started is `missed` once its deadline passes: the job's next fire time,
  or the misfire grace for manual runs and one-off jobs.
- Log lines are `<ISO time> <sentence>`, appended.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

import config
from app.database import db_now
from app.extensions import db
from app.models import UNFINISHED_RUN_STATES, BackupJob, Run, Server
from app.services.schedule import Schedule, next_fire_time
from app.timeutil import iso_utc, utcnow

AGENT_OFFLINE = "no agent started the run before its deadline (agent offline)"
# ... while the server's agent sent heartbeats: it was not offline, and the reason is one of these
AGENT_DID_NOT_START = (
    "no agent started the run before its deadline, though the server's agent was online: it "
    "was busy with earlier runs, or the run's message did not reach it (the broker restarted "
    "or was unreachable)"
)
WORKER_LOST = "worker lost: no heartbeat from the agent within the lease"


# ---- records -------------------------------------------------------------------------------


def job_schedule(job: BackupJob) -> Schedule:
    return Schedule(job.schedule_type, job.schedule_expr, job.timezone)


def unfinished_run(job_id: int) -> Run | None:
    return db.session.scalar(
        select(Run).where(Run.job_id == job_id, Run.state.in_(UNFINISHED_RUN_STATES)).limit(1)
    )


def create_run(job: BackupJob, trigger: str, scheduled_for, state: str, **fields) -> Run | None:
    """A run record, or None when one already exists for (job, fire time, trigger)."""
    run = Run(job_id=job.id, trigger=trigger, scheduled_for=scheduled_for, state=state, **fields)
    try:
        with db.session.begin_nested():
            db.session.add(run)
    except IntegrityError:
        return None
    if state not in UNFINISHED_RUN_STATES:
        run.finished_at = utcnow()
    return run


def note(row, message: str) -> None:
    """Append a line to a run's or restore's log."""
    row.log = [*(row.log or []), f"{iso_utc(utcnow())} {message}"]


# ---- state changes -------------------------------------------------------------------------


def claim(model, row_id: int) -> bool:
    """queued -> running, for exactly one worker: a redelivered message finds it taken. The
    lease starts on the database's clock. Commits."""
    claimed = db.session.execute(
        update(model)
        .where(model.id == row_id, model.state == "queued")
        .values(state="running", started_at=db_now(), heartbeat_at=db_now())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return claimed == 1


def change_state(run: Run, expected: tuple[str, ...], new_state: str) -> bool:
    """Move `run` to `new_state` only if it is still in one of `expected` (an atomic UPDATE)."""
    changed = db.session.execute(
        update(Run)
        .where(Run.id == run.id, Run.state.in_(expected))
        .values(state=new_state)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed:
        run.state = new_state
        db.session.flush()
    return changed == 1


def finish_run(run: Run, state: str, error: str | None = None) -> None:
    run.state = state
    run.finished_at = utcnow()
    if error:
        run.error_message = error
        run.log = [*(run.log or []), f"{iso_utc(run.finished_at)} {error}"]
    refresh_job_status(run.job)


def refresh_job_status(job: BackupJob) -> None:
    db.session.flush()
    # A `canceling` run was stopped: the job shows what it was told to do (`waiting`).
    running = db.session.scalar(
        select(Run.id).where(Run.job_id == job.id, Run.state == "running").limit(1)
    )
    if running is not None:
        job.status = "running"
    elif job.active:
        job.status = "scheduled"
    elif job.schedule_type == "once" and job.next_run_at is None and _has_run(job):
        job.status = "completed"
    else:
        job.status = "waiting"


def _has_run(job: BackupJob) -> bool:
    return (
        db.session.scalar(
            select(Run.id).where(Run.job_id == job.id, Run.trigger != "manual").limit(1)
        )
        is not None
    )


# ---- the lease -----------------------------------------------------------------------------


def lease_seconds() -> float:
    """How long a run or restore stays `running` without a renewal (ZDM_RUN_LEASE_SECONDS)."""
    return config.run_lease_seconds()


def lease_renew_seconds() -> float:
    """How often an agent renews a lease: four times per lease, between 0.5 and 5 seconds."""
    return max(0.5, min(5.0, lease_seconds() / 4))


def lease_expired(model) -> tuple:
    """Unfinished, and no renewal within the lease, by the database's clock (SQL criteria)."""
    return (
        model.state.in_(("running", "canceling")),
        model.heartbeat_at < db_now(-lease_seconds()),
    )


def renew_if_unfinished(model, row_id: int) -> bool:
    """Renew the lease of a run or restore that is still unfinished, inside the caller's
    transaction: until it commits, the row is locked (PostgreSQL) or the database is
    (SQLite), so no sweep can declare it lost in between. False: it was declared lost (or
    finished, or deleted) meanwhile."""
    renewed = db.session.execute(
        update(model)
        .where(model.id == row_id, model.state.in_(("running", "canceling")))
        .values(heartbeat_at=db_now())
        .execution_options(synchronize_session=False)
    ).rowcount
    return renewed == 1


def take_lost(model, row, **values) -> bool:
    """Write `values` to a lost row if it is still lost (unfinished, no fresh renewal)."""
    taken = db.session.execute(
        update(model)
        .where(model.id == row.id, *lease_expired(model))
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    return taken == 1


# ---- deadlines -----------------------------------------------------------------------------


def run_deadline(trigger: str, scheduled_for: datetime, queued_at: datetime, schedule) -> datetime:
    """When a queued run that no agent has started is recorded `missed`: the job's next
    fire time for a scheduled run; the misfire grace for manual runs and one-off jobs."""
    deadline = None
    if trigger == "schedule":
        deadline = next_fire_time(schedule, scheduled_for)
    if deadline is None:
        grace = current_app.config["ZDM_MISFIRE_GRACE_SECONDS"]
        deadline = queued_at + timedelta(seconds=grace)
    return deadline


def unstarted_too_long(run: Run, now: datetime) -> bool:
    return run_deadline(run.trigger, run.scheduled_for, run.queued_at, job_schedule(run.job)) <= now


def miss_if_unstarted(run: Run, now: datetime) -> bool:
    """A queued run past its deadline becomes `missed`; conditional, since an agent may claim
    it between our read and this write. Does not commit."""
    if unstarted_too_long(run, now) and change_state(run, ("queued",), "missed"):
        heard = agents_heard([run.job.server_id], now)
        finish_run(run, "missed", AGENT_DID_NOT_START if heard else AGENT_OFFLINE)
        return True
    return False


def agents_heard(server_ids, now: datetime) -> set[int]:
    """Those of the servers whose agent sent a heartbeat within ZDM_AGENT_OFFLINE_SECONDS
    (the servers the API shows `online`)."""
    fresh = now - timedelta(seconds=current_app.config["ZDM_AGENT_OFFLINE_SECONDS"])
    return set(
        db.session.scalars(
            select(Server.id).where(
                Server.id.in_(set(server_ids)), Server.online.is_(True), Server.last_seen > fresh
            )
        )
    )


def expire_unstarted_runs(job: BackupJob, now: datetime) -> int:
    """Queued runs whose job has reached its next fire time become `missed`."""
    queued = select(Run).where(Run.job_id == job.id, Run.state == "queued")
    return sum(miss_if_unstarted(run, now) for run in db.session.scalars(queued).all())
