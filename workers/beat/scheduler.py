"""The beat scheduler: `celery -A workers beat -S workers.beat.scheduler:ZdmScheduler`.

Every tick (at most a second apart) it reads the due jobs from the database, so jobs
registered, changed, stopped or deleted through the API are honoured from their next fire
time without restarting beat.

Work is done in batches of up to `BATCH_SIZE` due jobs, each batch a few set-based
statements whatever its size (docs/decisions.md, "Beat at 10,000 due jobs"): one claim, one
read of the jobs' unfinished runs, one insert of all their run records, one commit, then the
queued runs are sent over one broker connection and marked dispatched in one statement.

Guarantees, and what gives them:
- Exactly one run per fire time, with any number of beats: a job is claimed by moving
  `next_run_at` from the fire time it read to the next one — on PostgreSQL under
  `FOR UPDATE SKIP LOCKED`, so two beats take different jobs and share the fan-out; on
  SQLite by a conditional UPDATE per job that only one beat's write matches. The run
  record's unique (job, fire time, trigger) is the second guard, and the agent only starts
  a run that is still `queued` (redelivery).
- No overlap: a fire time that finds an unfinished run records a `skipped` run.
- Every fire time has a record: when beat reaches a job after one or more of its fire
  times have passed (beat was down, stalled, or behind under load), the newest passed fire
  time runs once when it is within `ZDM_MISFIRE_GRACE_SECONDS`, and the older ones are
  recorded by one `missed` run at the first of them that names them all; when even the
  newest is beyond the grace, that one `missed` run names them all. Either way
  `next_run_at` moves to the future.
- Runs do not pile up: the message expires at the job's next fire time, and a run still
  queued then is recorded `missed` (agent offline).
- A broker that fails during the fan-out leaves the unsent runs `queued` without
  `dispatched_at`; the control worker's sweep sends them again (or fails them).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from celery.beat import Scheduler
from flask import current_app
from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db
from app.log_format import log_context
from app.models import UNFINISHED_RUN_STATES, BackupJob, Run, Server
from app.services import dispatch
from app.services.run_lifecycle import (
    AGENT_DID_NOT_START,
    AGENT_OFFLINE,
    agents_heard,
    refresh_job_status,
    run_deadline,
)
from app.services.schedule import Schedule, next_fire_time
from app.services.verification import fire_due_verifications
from app.timeutil import iso_utc, utcnow
from workers.app_context import worker_app

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
BATCH_SIZE = 1000
# The first batch of a tick is small, so the first runs of a large fan-out go out at once.
FIRST_BATCH_SIZE = 100
# A tick keeps firing batches for at most this long, then lets Celery's own schedule run.
TICK_BUDGET_SECONDS = 5.0
_MAX_CATCH_UP = 100_000  # fire times counted after a long outage, per job
OVERLAP = "the previous run of this job was still queued or running"


@dataclass(frozen=True)
class _Passed:
    """The fire times of a schedule that have passed, from the one a job was due at."""

    newest: datetime  # the newest fire time not after now
    following: datetime | None  # the job's next fire time after now (None: no more)
    older: int  # fire times before `newest` that were not reached in time


@dataclass(frozen=True)
class _Claim:
    job_id: int
    name: str
    server: str
    fire_at: datetime  # the `next_run_at` claimed
    schedule: Schedule
    passed: _Passed


def fire_due_jobs(now: datetime | None = None) -> list[Run]:
    """Turn every due job into its run records; returns the records this call made."""
    ids = fire_due(now or utcnow())
    if not ids:
        return []
    return list(db.session.scalars(select(Run).where(Run.id.in_(ids)).order_by(Run.id)))


def fire_due(now: datetime, budget: float = TICK_BUDGET_SECONDS) -> list[int]:
    """Fire batches of due jobs until none is left or `budget` seconds have passed;
    returns the ids of the run records made."""
    deadline = time.monotonic() + budget
    recorded: list[int] = []
    size = FIRST_BATCH_SIZE
    while True:
        made, claimed = fire_batch(now, size=size)
        recorded += made
        if claimed < size or time.monotonic() > deadline:
            return recorded
        size = BATCH_SIZE


def seconds_until_due(now: datetime) -> float:
    """How long until the earliest active job is due (0 when one is due now): beat sleeps
    no longer than that, so a fire time is reached on time rather than up to a tick late."""
    earliest = db.session.scalar(
        select(func.min(BackupJob.next_run_at)).where(BackupJob.active.is_(True))
    )
    if earliest is None:
        return TICK_SECONDS
    return max(0.0, (earliest - now).total_seconds())


def fire_job(job_id: int, fire_at: datetime, now: datetime) -> Run | None:
    """Fire one job as if beat had read `fire_at` as its next fire time (a stale read
    fires nothing); returns its run, or None."""
    made, _ = fire_batch(now, only=(job_id, fire_at))
    runs = [db.session.get(Run, run_id) for run_id in made]
    return runs[-1] if runs else None


def fire_batch(
    now: datetime, only: tuple[int, datetime] | None = None, size: int = BATCH_SIZE
) -> tuple[list[int], int]:
    """One batch of up to `size` due jobs: claim them, record their runs, commit, send.
    Returns the ids of the run records made and the number of jobs claimed."""
    claims = _claim(now, only, size)
    if not claims:
        db.session.commit()
        return [], 0
    grace = current_app.config["ZDM_MISFIRE_GRACE_SECONDS"]
    busy = _unfinished_after_expiry(claims, now)
    records = [record for claim in claims for record in _records(claim, now, grace, busy)]
    made = _insert(records)
    for claim in claims:
        if claim.passed.following is None:  # a one-off job that has fired: waiting/completed
            refresh_job_status(db.session.get(BackupJob, claim.job_id))
    db.session.commit()

    by_job = {claim.job_id: claim for claim in claims}
    queued = []
    for run_id, job_id, state, scheduled_for, reason in made:
        claim = by_job[job_id]
        with log_context(job=job_id, jobName=claim.name, run=run_id):
            log.info(
                "fired job %s (%s) for %s: run %s %s%s",
                job_id,
                claim.name,
                iso_utc(scheduled_for),
                run_id,
                state,
                f" ({reason})" if reason else "",
            )
        if state == "queued":
            queued.append((run_id, claim))
    _send(queued, now)
    return [row[0] for row in made], len(claims)


# ---- claiming ---------------------------------------------------------------------------


def _claim(now: datetime, only: tuple[int, datetime] | None, size: int) -> list[_Claim]:
    query = (
        select(
            BackupJob.id,
            BackupJob.name,
            BackupJob.next_run_at,
            BackupJob.schedule_type,
            BackupJob.schedule_expr,
            BackupJob.timezone,
            Server.name.label("server"),
        )
        .join(Server, Server.id == BackupJob.server_id)
        .where(BackupJob.active.is_(True))
    )
    if only is not None:
        query = query.where(BackupJob.id == only[0], BackupJob.next_run_at == only[1])
    else:
        query = query.where(BackupJob.next_run_at <= now)
    query = query.order_by(BackupJob.next_run_at).limit(size)
    postgres = db.session.get_bind().dialect.name == "postgresql"
    if postgres:
        query = query.with_for_update(skip_locked=True, of=BackupJob)

    passed_of: dict[tuple[Schedule, datetime], _Passed] = {}
    claims = []
    for row in db.session.execute(query):
        schedule = Schedule(row.schedule_type, row.schedule_expr, row.timezone)
        key = (schedule, row.next_run_at)
        if key not in passed_of:  # jobs on one cron, due at one time: computed once
            passed_of[key] = _passed(schedule, row.next_run_at, now)
        claims.append(
            _Claim(row.id, row.name, row.server, row.next_run_at, schedule, passed_of[key])
        )
    if not claims:
        return []
    if postgres:  # the rows are locked: one statement moves them all on
        db.session.execute(
            text(
                "UPDATE backup_jobs AS j SET next_run_at = v.next_run_at, active = v.active"
                " FROM unnest(CAST(:ids AS integer[]), CAST(:nexts AS timestamp[]),"
                " CAST(:actives AS boolean[])) AS v(id, next_run_at, active)"
                " WHERE j.id = v.id"
            ),
            {
                "ids": [c.job_id for c in claims],
                "nexts": [c.passed.following for c in claims],
                "actives": [c.passed.following is not None for c in claims],
            },
        )
        return claims
    return [claim for claim in claims if _claim_one(claim)]


def _claim_one(claim: _Claim) -> bool:
    """SQLite: move one job on, only if no other beat has (its write matches once)."""
    following = claim.passed.following
    return (
        db.session.execute(
            update(BackupJob)
            .where(
                BackupJob.id == claim.job_id,
                BackupJob.next_run_at == claim.fire_at,
                BackupJob.active.is_(True),
            )
            .values(next_run_at=following, active=following is not None)
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )


def _passed(schedule: Schedule, fire_at: datetime, now: datetime) -> _Passed:
    newest, following, older = fire_at, next_fire_time(schedule, fire_at), 0
    for _ in range(_MAX_CATCH_UP):
        if following is None or following > now:
            break
        newest, following, older = following, next_fire_time(schedule, following), older + 1
    else:
        following = next_fire_time(schedule, now)
    return _Passed(newest, following, older)


# ---- what each fire time becomes ---------------------------------------------------------


def _unfinished_after_expiry(claims: list[_Claim], now: datetime) -> set[int]:
    """The claimed jobs that still have an unfinished run, once their queued runs past
    their deadline have been recorded `missed` (agent offline)."""
    schedules = {claim.job_id: claim.schedule for claim in claims}
    rows = db.session.execute(
        select(Run.id, Run.job_id, Run.state, Run.trigger, Run.scheduled_for, Run.queued_at).where(
            Run.job_id.in_(schedules), Run.state.in_(UNFINISHED_RUN_STATES)
        )
    ).all()
    expired = [
        row.id
        for row in rows
        if row.state == "queued"
        and run_deadline(row.trigger, row.scheduled_for, row.queued_at, schedules[row.job_id])
        <= now
    ]
    gone = _record_missed(expired, now) if expired else set()
    return {row.job_id for row in rows if row.id not in gone}


def _record_missed(run_ids: list[int], now: datetime) -> set[int]:
    """Queued runs that no agent started in time become `missed`; conditional, since an
    agent may claim one meanwhile. The reason says whether the server's agent was offline.
    Returns the ids changed."""
    servers = dict(
        db.session.execute(
            select(Run.id, BackupJob.server_id)
            .join(BackupJob, BackupJob.id == Run.job_id)
            .where(Run.id.in_(run_ids))
        ).all()
    )
    heard = agents_heard(servers.values(), now)
    changed = db.session.execute(
        update(Run)
        .where(Run.id.in_(run_ids), Run.state == "queued")
        .values(state="missed", finished_at=now)
        .returning(Run.id, Run.log)
        .execution_options(synchronize_session=False)
    ).all()
    if changed:
        runs = Run.__table__
        rows = []
        for run_id, old in changed:
            reason = AGENT_DID_NOT_START if servers.get(run_id) in heard else AGENT_OFFLINE
            rows.append({"run_id": run_id, "reason": reason,
                         "new_log": [*(old or []), f"{iso_utc(now)} {reason}"]})  # fmt: skip
        db.session.connection().execute(  # Core: one executemany, not the ORM's bulk update
            update(runs)
            .where(runs.c.id == bindparam("run_id"))
            .values(
                error_message=bindparam("reason"),
                log=bindparam("new_log", type_=runs.c.log.type),
            ),
            rows,
        )
    return {run_id for run_id, _ in changed}


def _records(claim: _Claim, now: datetime, grace: int, busy: set[int]) -> list[dict]:
    passed = claim.passed
    late = (now - passed.newest).total_seconds()
    if late > grace:  # even the newest passed fire time is too old to run
        count = passed.older + 1
        reason = (
            f"beat was not running at {iso_utc(claim.fire_at)}; the misfire grace is {grace} s"
            if count == 1
            else f"beat was not running from {iso_utc(claim.fire_at)} to"
            f" {iso_utc(passed.newest)} ({count} fire times); the misfire grace is {grace} s"
        )
        return [_record(claim, claim.fire_at, "missed", reason, now)]
    records = []
    if passed.older:
        reason = (
            f"beat was late: it reached the fire time {iso_utc(claim.fire_at)} only after"
            f" {iso_utc(passed.newest)} had passed"
            if passed.older == 1
            else f"beat was late: it reached the {passed.older} fire times from"
            f" {iso_utc(claim.fire_at)} only after {iso_utc(passed.newest)} had passed"
        )
        records.append(_record(claim, claim.fire_at, "missed", reason, now))
    if claim.job_id in busy:
        records.append(_record(claim, passed.newest, "skipped", OVERLAP, now))
    else:
        records.append(_record(claim, passed.newest, "queued", None, now))
    return records


def _record(claim: _Claim, fire_time: datetime, state: str, reason: str | None, now) -> dict:
    stamp = utcnow()  # when the record was made (`now` may lag behind it, or be injected)
    return {
        "job_id": claim.job_id,
        "trigger": "schedule",
        "scheduled_for": fire_time,
        "state": state,
        "queued_at": stamp,
        "finished_at": None if state == "queued" else stamp,
        "error_message": reason,
        "log": [f"{iso_utc(now)} {reason}"] if reason else [],
        "bytes_total": 0,
        "bytes_read": 0,
        "bytes_written": 0,
        "percent": 0.0,
        "speed": 0.0,
    }


def _insert(records: list[dict]) -> list[tuple]:
    """Insert run records, skipping any whose fire time already has one; a queued record
    refused because the job has an unfinished run (a manual run raced us) becomes
    `skipped`. Returns (id, job_id, state, scheduled_for, reason) of the records made."""
    made = _insert_ignoring_conflicts(records)
    have = {(row[1], row[3]) for row in made}
    raced = [
        {
            **r,
            "state": "skipped",
            "error_message": OVERLAP,
            "finished_at": r["queued_at"],
            "log": [f"{iso_utc(r['queued_at'])} {OVERLAP}"],
        }
        for r in records
        if r["state"] == "queued" and (r["job_id"], r["scheduled_for"]) not in have
    ]
    if raced:
        made += _insert_ignoring_conflicts(raced)
    return made


def _insert_ignoring_conflicts(records: list[dict]) -> list[tuple]:
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(Run.__table__)
        .on_conflict_do_nothing()
        .returning(Run.id, Run.job_id, Run.state, Run.scheduled_for, Run.error_message)
    )
    # executemany: SQLAlchemy's "insertmanyvalues" sends one cached statement per page
    return [tuple(row) for row in db.session.connection().execute(statement, records)]


# ---- sending ------------------------------------------------------------------------------


def _send(queued: list[tuple[int, _Claim]], now: datetime) -> None:
    """Send committed queued runs to their agents over one connection; mark what was sent.
    Unsent runs (the broker failed) stay queued without `dispatched_at`: the sweep resends."""
    if not queued:
        return
    sent = dispatch.send_many(
        dispatch.BACKUP_TASK,
        [
            (
                dispatch.server_queue(claim.server),
                {"run_id": run_id, "job_id": claim.job_id, "job_name": claim.name},
                claim.passed.following,
            )
            for run_id, claim in queued
        ],
    )
    if sent:
        db.session.execute(
            update(Run)
            .where(Run.id.in_([run_id for run_id, _ in queued[:sent]]))
            .values(dispatched_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    if sent < len(queued):
        log.warning("%d runs were not sent; the sweep sends them again", len(queued) - sent)


# ---- the Celery beat scheduler ------------------------------------------------------------

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def _give_back_memory() -> None:
    """After a large fan-out, hand freed heap back to the system (glibc keeps it
    otherwise), so an idle beat stays small."""
    trim = getattr(_libc, "malloc_trim", None)
    if trim is not None:
        trim(0)


class ZdmScheduler(Scheduler):
    """Celery beat's Scheduler, plus the database-driven backup schedule."""

    def __init__(self, *args, **kwargs):
        self.flask_app = worker_app()
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs):
        wait = TICK_SECONDS
        with self.flask_app.app_context():
            try:
                fired = fire_due(utcnow())
                fire_due_verifications(utcnow())
                wait = seconds_until_due(utcnow())  # 0 while a fan-out is unfinished
            except Exception:  # the database may be down: log, and try again next tick
                log.exception("reading due jobs failed")
                db.session.rollback()
                fired = []
            finally:
                db.session.remove()
        if len(fired) >= BATCH_SIZE:
            _give_back_memory()
        return min(super().tick(*args, **kwargs), TICK_SECONDS, wait)
