"""The control worker's sweeps: lost runs and restores, and runs no agent started.

A run whose lease was not renewed for `ZDM_RUN_LEASE_SECONDS` (default 60) lost its worker: it
becomes `failed` ("worker lost") and, unless it was itself a retry, is retried once. With the
sweep every `ZDM_SWEEP_SECONDS` (30), a lost run is noticed within 90 s. Every change is a
conditional UPDATE, so two sweeps at once (two beats) do it once.

The lease rules, like every rule of a run's life, are `app/services/run_lifecycle.py`: leases
are stamped and judged with the database's clock, so neither an agent's clock nor this
worker's can declare a live run lost or keep a dead one alive. `now` (this worker's clock, or
a test's) only serves the rules about queued runs, which follow the jobs' fire times.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

import redis
from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import select

import config
from app.database import db_now
from app.extensions import db
from app.models import RecoveryPoint, Restore, Run
from app.services import dispatch
from app.services.run_commands import dispatch_run
from app.services.run_lifecycle import (
    WORKER_LOST,
    create_run,
    finish_run,
    lease_expired,
    lease_seconds,
    miss_if_unstarted,
    note,
    take_lost,
)
from app.timeutil import utcnow

log = logging.getLogger(__name__)

# A queued run whose message never reached the broker (its sender died between commit and
# send) is sent again after this long.
RESEND_AFTER_SECONDS = 15


def sweep(now: datetime | None = None, judge_leases: bool = True) -> dict:
    """One sweep. `judge_leases=False` (see `LeaseWatch`) declares nothing lost this time."""
    now = now or utcnow()
    return {
        "lost_runs": sweep_lost_runs() if judge_leases else [],
        "missed_runs": sweep_unstarted_runs(now),
        "resent_runs": resend_undispatched_runs(now),
        "lost_restores": sweep_lost_restores() if judge_leases else [],
    }


class LeaseWatch:
    """Whether this process's sweep may judge leases now.

    A lease that ran out while the database was unreachable says nothing about its agent:
    no agent could renew it. So after the sweep could not reach the database (a sweep failed
    on it, or none ran for longer than a lease and a sweep interval: this worker was down or
    starved), it declares nothing lost until it has reached the database for a full lease
    again; agents whose runs are alive renew their leases in that time. The price: a run
    whose agent really died during the outage is declared lost one lease later.
    """

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.reachable_since: float | None = None  # this streak of sweeps that reached it
        self.last_reached: float | None = None

    def reached(self) -> bool:
        """The database answered this sweep; True if leases may be judged."""
        now, lease = self.clock(), lease_seconds()
        quiet_too_long = (
            self.last_reached is None or now - self.last_reached > lease + config.sweep_seconds()
        )
        if self.reachable_since is None or quiet_too_long:
            self.reachable_since = now
        self.last_reached = now
        return now - self.reachable_since >= lease

    def unreachable(self) -> None:
        self.reachable_since = None


def sweep_lost_runs() -> list[int]:
    retried = []
    for run in db.session.scalars(select(Run).where(*lease_expired(Run))).all():
        was_canceling = run.state == "canceling"
        if not take_lost(Run, run, state="failed", finished_at=db_now()):
            db.session.rollback()
            continue
        db.session.refresh(run)
        if (point := _recorded_point(run.id)) is not None:
            # the agent was lost after recording the point: the backup is whole and listed,
            # so the run succeeded; a retry would make a second point for the fire time
            finish_run(run, "success")
            note(run, f"the agent stopped answering after recording recovery point "
                      f"{point}; the backup is complete, its rotation did not run (the job's "
                      f"next run rotates)")  # fmt: skip
            db.session.commit()
            dispatch.send(dispatch.RUN_FINISHED_TASK, dispatch.CONTROL_QUEUE, {"run_id": run.id})
            continue
        if was_canceling:
            finish_run(run, "canceled", "canceled; the agent stopped answering")
            db.session.commit()
            continue
        finish_run(run, "failed", WORKER_LOST)
        retry = None
        if run.trigger != "retry":  # retried once; a lost retry stays failed
            retry = create_run(run.job, "retry", run.scheduled_for, "queued", retry_of_id=run.id)
        db.session.commit()
        if retry is not None:
            retried.append(retry.id)
            dispatch_run(retry)
        dispatch.send(dispatch.RUN_FINISHED_TASK, dispatch.CONTROL_QUEUE, {"run_id": run.id})
    return retried


def _recorded_point(run_id: int) -> str | None:
    return db.session.scalar(
        select(RecoveryPoint.engine_id).where(RecoveryPoint.run_id == run_id).limit(1)
    )


def sweep_unstarted_runs(now: datetime) -> list[int]:
    missed = []
    for run in db.session.scalars(select(Run).where(Run.state == "queued")).all():
        if miss_if_unstarted(run, now):
            missed.append(run.id)
        db.session.commit()
    return missed


def resend_undispatched_runs(now: datetime) -> list[int]:
    """Queued runs whose message never reached the broker, and those sent before the broker's
    current start: a Redis restarted without persistence lost them (with persistence it kept
    them, and the second message finds the run claimed)."""
    horizon = now - timedelta(seconds=RESEND_AFTER_SECONDS)
    unsent = Run.dispatched_at.is_(None) & (Run.queued_at < horizon)
    restarted = broker_started_at()
    if restarted is not None:
        unsent = unsent | (Run.dispatched_at < restarted)
    # `dispatched_at` is this host's clock when sent (not a test's `now`)
    sent_now, lease = utcnow(), timedelta(seconds=lease_seconds())
    unsent = unsent | (Run.dispatched_at < sent_now - lease)  # see `_unclaimed_too_long`
    stranded = select(Run).where(Run.state == "queued", unsent)
    resent = []
    for run in db.session.scalars(stranded).all():
        if run.dispatched_at is not None and not _unclaimed_too_long(
            run, sent_now, lease, restarted
        ):
            continue
        if dispatch_run(run):  # a duplicate message is harmless: the agent claims once
            resent.append(run.id)
    return resent


def _unclaimed_too_long(run: Run, now: datetime, lease: timedelta, restarted) -> bool:
    """A run sent, but not started, is sent again when its message may be stuck: an agent
    killed after taking it holds it unacknowledged in Redis until the visibility timeout,
    where no other agent sees it; an agent that took it while the database was out of reach
    could not claim it. First after a lease, then each time after as long again as it had
    waited when last sent (so a run waiting behind a busy agent costs a few messages, not
    one a sweep). Messages sent before the broker's current start are sent again at once."""
    if restarted is not None and run.dispatched_at < restarted:
        return True
    waited_before = max(run.dispatched_at - run.queued_at, lease)
    return now - run.dispatched_at >= waited_before


def broker_started_at() -> datetime | None:
    """When the running Redis started (its uptime, on this host's clock), or None if unknown."""
    try:
        client = redis.Redis.from_url(current_app.config["REDIS_URL"], socket_timeout=2)
        try:
            uptime = client.info("server")["uptime_in_seconds"]
        finally:
            client.close()
    except (RedisError, KeyError, ValueError) as exc:
        log.warning("could not read the broker's uptime: %s", exc)
        return None
    return utcnow() - timedelta(seconds=uptime)


def sweep_lost_restores() -> list[int]:
    lost = []
    for restore in db.session.scalars(select(Restore).where(*lease_expired(Restore))).all():
        if take_lost(Restore, restore, state="failed", finished_at=db_now()):
            db.session.refresh(restore)
            restore.error_message = WORKER_LOST
            lost.append(restore.id)
        db.session.commit()
    return lost
