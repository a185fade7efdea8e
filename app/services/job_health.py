"""Job health: is a job backing up as often as its schedule says?

A job is `late` when its last successful run finished longer ago than twice its interval;
a job that never succeeded counts from its first fire time after registration. The
interval is the gap between the schedule's last two fire times before now (for `0 2 * * 1-5`
on a Monday that is the weekend's three days, so a weekday job is not late on Mondays).

- `ok`: an active job within that bound, or an active one-off (`once`) job;
- `late`: an active recurring job past it — a backup that silently stopped happening;
- `inactive`: a job whose schedule is not active (stopped, `autoStart: no`, a one-off that ran).

The same rule is evaluated two ways: `health_of` for the jobs a page shows, and
`late_job_ids` in SQL for the `?health=` filter and the metrics, with one row of
thresholds per distinct schedule (the cron arithmetic runs once per schedule, not per job).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import DateTime, Select, String, and_, column, false, or_, select, values

from app.extensions import db
from app.models import BackupJob, Run
from app.services.schedule import Schedule, previous_fire_time

HEALTH_STATES = ("ok", "late", "inactive")
# Schedules per VALUES list: five bound parameters each stay well below SQLite's limit.
_SCHEDULES_PER_STATEMENT = 1000


@dataclass(frozen=True)
class LateBound:
    success_before: datetime  # a last success before this is late (now - 2 intervals)
    registered_before: datetime | None  # never succeeded: late if registered before this


def late_bound(schedule: Schedule, now: datetime) -> LateBound | None:
    """The bounds of `late` for a recurring schedule at `now`; None for a one-off schedule
    or one that has not fired twice yet."""
    if schedule.type == "once":
        return None
    minute = now.replace(second=0, microsecond=0)
    if minute == now:  # on a minute, where a fire time may lie: no shortcut
        found = _interval_and_registered_before(schedule, now)
    else:
        found = _within_minute(schedule, minute)
    if found is None:
        return None
    interval, registered_before = found
    return LateBound(now - 2 * interval, registered_before)


def _interval_and_registered_before(schedule: Schedule, now: datetime):
    last = previous_fire_time(schedule, now)
    before_last = previous_fire_time(schedule, last) if last else None
    if before_last is None:
        return None
    interval = last - before_last
    # Registered at `created`, its first fire time lies before `now - 2 * interval` exactly
    # when `created` lies before the last fire time preceding that instant.
    return interval, previous_fire_time(schedule, now - 2 * interval)


@functools.lru_cache(maxsize=4096)
def _within_minute(schedule: Schedule, minute: datetime):
    """Fire times fall on whole minutes, so for every instant strictly inside one minute
    the interval and the registration bound are those of its middle: each page of jobs
    and each scrape does the cron arithmetic once per schedule and minute."""
    return _interval_and_registered_before(schedule, minute + timedelta(seconds=30))


def health_of(
    schedule: Schedule,
    active: bool,
    created_at: datetime,
    last_success: datetime | None,
    now: datetime,
) -> str:
    if not active:
        return "inactive"
    bound = late_bound(schedule, now)
    if bound is None:
        return "ok"
    if last_success is not None:
        return "late" if last_success < bound.success_before else "ok"
    registered_before = bound.registered_before
    return "late" if registered_before is not None and created_at < registered_before else "ok"


def last_success_of(job) -> Select:
    """When the job's latest successful run finished (a correlated scalar subquery; the
    index `ix_runs_job_started` yields the job's runs newest first)."""
    return (
        select(Run.finished_at)
        .where(Run.job_id == job.id, Run.state == "success")
        .order_by(Run.started_at.desc(), Run.id.desc())
        .limit(1)
        .correlate(job)
        .scalar_subquery()
    )


_LIVE_ACTIVE_RECURRING = (
    BackupJob.deleted_at.is_(None),
    BackupJob.active.is_(True),
    BackupJob.schedule_type != "once",
)


def late_job_ids(now: datetime) -> list[Select]:
    """Statements selecting the ids of late jobs (one per thousand distinct schedules)."""
    schedules = db.session.execute(
        select(BackupJob.schedule_type, BackupJob.schedule_expr, BackupJob.timezone)
        .where(*_LIVE_ACTIVE_RECURRING)
        .distinct()
    ).all()
    rows = []
    for type_, expression, timezone in schedules:
        bound = late_bound(Schedule(type_, expression, timezone), now)
        if bound is not None:
            rows.append(
                (type_, expression, timezone, bound.success_before, bound.registered_before)
            )
    chunks = [
        rows[i : i + _SCHEDULES_PER_STATEMENT]
        for i in range(0, len(rows), _SCHEDULES_PER_STATEMENT)
    ]
    return [_late_among(chunk, f"late_bounds_{n}") for n, chunk in enumerate(chunks)]


def _late_among(rows: list[tuple], name: str) -> Select:
    # A CTE `name(columns) AS (VALUES ...)`: SQLite takes no column list on a derived table.
    bounds = (
        values(
            column("schedule_type", String),
            column("schedule_expr", String),
            column("timezone", String),
            column("success_before", DateTime),
            column("registered_before", DateTime),
            name=name,
        )
        .data(rows)
        .cte(name)
    )
    jobs = (
        select(
            BackupJob.id,
            BackupJob.schedule_type,
            BackupJob.schedule_expr,
            BackupJob.timezone,
            BackupJob.created_at,
            last_success_of(BackupJob).label("last_success"),
        )
        .where(*_LIVE_ACTIVE_RECURRING)
        .subquery(f"{name}_jobs")
    )
    return (
        select(jobs.c.id)
        .join(
            bounds,
            and_(
                jobs.c.schedule_type == bounds.c.schedule_type,
                jobs.c.schedule_expr == bounds.c.schedule_expr,
                jobs.c.timezone == bounds.c.timezone,
            ),
        )
        .where(
            or_(
                jobs.c.last_success < bounds.c.success_before,
                and_(
                    jobs.c.last_success.is_(None),
                    jobs.c.created_at < bounds.c.registered_before,
                ),
            )
        )
    )


def health_condition(health: str, now: datetime):
    """A condition on BackupJob for `GET /backups?health=...`."""
    late = late_job_ids(now)
    is_late = or_(*(BackupJob.id.in_(ids) for ids in late)) if late else false()
    if health == "late":
        return is_late
    if health == "inactive":
        return BackupJob.active.is_(False)
    return and_(BackupJob.active.is_(True), ~is_late)
