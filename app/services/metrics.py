"""Metrics for Prometheus, computed from the database at scrape time.

Nothing is counted in the web process: every scrape reads a few aggregate queries, so
every gunicorn worker answers the same numbers and a restart loses nothing. The official
client library (`prometheus_client`) writes the exposition format; a fresh registry per
scrape holds only this collector (no per-process series).

Series per job (last success, late) are bounded by `ZDM_METRICS_JOB_SERIES`: at 100,000
jobs one series each would cost Prometheus more than it tells (docs/decisions.md).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from flask import current_app
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from sqlalchemy import and_, case, func, literal_column, select, union_all

from app.extensions import db
from app.models import JOB_STATUSES, RUN_STATES, BackupJob, Run, Server
from app.services.job_health import HEALTH_STATES, last_success_of, late_job_ids
from app.timeutil import utcnow

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FINISHED_STATES = ("success", "failed", "canceled")
DURATION_BUCKETS = (10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400)
_EPOCH = datetime(1970, 1, 1)


def exposition() -> bytes:
    """One scrape: the text Prometheus reads."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(utcnow()))
    return generate_latest(registry)


class DatabaseCollector:
    def __init__(self, now: datetime):
        self.now = now

    def collect(self):
        jobs = _live_jobs()
        late_ids = _late_ids(self.now)
        yield _jobs_by_status(jobs)
        yield _jobs_by_health(jobs, len(late_ids))
        yield from _runs()
        yield from _per_job(sum(jobs.values()), late_ids)
        yield from _agents(self.now)


def _live_jobs() -> dict[tuple[str, bool], int]:
    """Live jobs counted by (status, active), in one pass over the index of live jobs."""
    rows = db.session.execute(
        select(BackupJob.status, BackupJob.active, func.count())
        .where(BackupJob.deleted_at.is_(None))
        .group_by(BackupJob.status, BackupJob.active)
    ).all()
    return {(status, bool(active)): count for status, active, count in rows}


def _jobs_by_status(jobs: dict) -> GaugeMetricFamily:
    family = GaugeMetricFamily("zdm_jobs", "Backup jobs by status", labels=["status"])
    for status in JOB_STATUSES:
        family.add_metric([status], sum(n for (s, _active), n in jobs.items() if s == status))
    return family


def _late_ids(now: datetime) -> list[int]:
    statements = late_job_ids(now)
    if not statements:
        return []
    query = statements[0] if len(statements) == 1 else union_all(*statements)
    return list(db.session.scalars(query))


def _jobs_by_health(jobs: dict, late: int) -> GaugeMetricFamily:
    active = sum(n for (_status, is_active), n in jobs.items() if is_active)
    inactive = sum(jobs.values()) - active
    family = GaugeMetricFamily(
        "zdm_jobs_health",
        "Backup jobs by health: late = last success older than twice the interval",
        labels=["health"],
    )
    counts = {"ok": active - late, "late": late, "inactive": inactive}
    for health in HEALTH_STATES:
        family.add_metric([health], counts[health])
    return family


def _seconds_between(start, end):
    if db.engine.dialect.name == "postgresql":
        return func.date_part("epoch", end - start)  # double precision; extract() is numeric
    return (func.julianday(end) - func.julianday(start)) * literal_column("86400.0")


def _runs():
    """Runs by state, the durations of finished runs and the bytes written, from one pass
    over the runs: grouped by state and duration bucket (the index of the first bucket a
    finished run's duration fits in; null for runs not finished)."""
    seconds = _seconds_between(Run.started_at, Run.finished_at)
    timed = and_(
        Run.state.in_(FINISHED_STATES), Run.started_at.is_not(None), Run.finished_at.is_not(None)
    )
    bucket = case(
        *((seconds <= limit, index) for index, limit in enumerate(DURATION_BUCKETS)),
        else_=len(DURATION_BUCKETS),
    )
    runs = select(
        Run.state.label("state"),
        Run.bytes_written.label("bytes_written"),
        case((timed, seconds)).label("seconds"),
        case((timed, bucket)).label("bucket"),
    ).subquery()
    rows = db.session.execute(
        select(
            runs.c.state,
            runs.c.bucket,
            func.count(),
            func.sum(runs.c.seconds),
            func.sum(runs.c.bytes_written),
        ).group_by(runs.c.state, runs.c.bucket)
    ).all()

    by_state: dict[str, int] = {}
    durations = {state: [0] * (len(DURATION_BUCKETS) + 1) for state in FINISHED_STATES}
    duration_sums = dict.fromkeys(FINISHED_STATES, 0.0)
    written = 0
    for state, bucket_index, count, total_seconds, total_bytes in rows:
        shown = "running" if state == "canceling" else state  # as the API shows it
        by_state[shown] = by_state.get(shown, 0) + count
        written += int(total_bytes or 0)
        if bucket_index is not None:
            durations[state][int(bucket_index)] += count
            duration_sums[state] += float(total_seconds or 0)

    family = GaugeMetricFamily("zdm_runs", "Runs of backup jobs by state", labels=["state"])
    for state in RUN_STATES:
        family.add_metric([state], by_state.get(state, 0))
    yield family

    histogram = HistogramMetricFamily(
        "zdm_run_duration_seconds",
        "Duration of finished runs (started to finished), by outcome",
        labels=["state"],
    )
    for state in FINISHED_STATES:
        cumulative = list(itertools.accumulate(durations[state]))
        buckets = [(str(float(b)), n) for b, n in zip(DURATION_BUCKETS, cumulative, strict=False)]
        histogram.add_metric([state], [*buckets, ("+Inf", cumulative[-1])], duration_sums[state])
    yield histogram

    bytes_written = CounterMetricFamily(
        "zdm_run_bytes_written", "Bytes written to repositories by all runs"
    )
    bytes_written.add_metric([], written)
    yield bytes_written


def _per_job(live: int, late_ids: list[int]):
    """Last success per job and the late jobs by name: for at most ZDM_METRICS_JOB_SERIES
    jobs each (the late jobs first by id; last success only when all live jobs fit)."""
    limit = current_app.config["ZDM_METRICS_JOB_SERIES"]
    labels = ["job_id", "job", "server"]
    last_success = GaugeMetricFamily(
        "zdm_job_last_success_timestamp_seconds",
        "When the job's last successful run finished (jobs that never succeeded: absent)",
        labels=labels,
    )
    if live <= limit:
        success = last_success_of(BackupJob).label("last_success")
        for job_id, name, server, finished in db.session.execute(
            _named_jobs(success).where(BackupJob.deleted_at.is_(None)).order_by(BackupJob.id)
        ):
            if finished is not None:
                last_success.add_metric([str(job_id), name, server], _timestamp(finished))
    yield last_success

    late = GaugeMetricFamily(
        "zdm_job_late",
        "1 for each late job (last success older than twice its interval)",
        labels=labels,
    )
    shown = sorted(late_ids)[:limit]
    if shown:
        for job_id, name, server in db.session.execute(
            _named_jobs().where(BackupJob.id.in_(shown)).order_by(BackupJob.id)
        ):
            late.add_metric([str(job_id), name, server], 1)
    yield late
    truncated = GaugeMetricFamily(
        "zdm_job_series_truncated",
        "1 when per-job series were left out (more jobs than ZDM_METRICS_JOB_SERIES)",
    )
    truncated.add_metric([], int(live > limit or len(late_ids) > limit))
    yield truncated


def _named_jobs(*extra):
    return select(BackupJob.id, BackupJob.name, Server.name, *extra).join(
        Server, Server.id == BackupJob.server_id
    )


def _agents(now: datetime):
    fresh = now - timedelta(seconds=current_app.config["ZDM_AGENT_OFFLINE_SECONDS"])
    online, total = db.session.execute(
        select(
            func.count().filter(Server.online.is_(True), Server.last_seen > fresh),
            func.count(),
        ).select_from(Server)
    ).one()
    family = GaugeMetricFamily(
        "zdm_agents_online", "Servers whose agent sent a heartbeat lately (online)"
    )
    family.add_metric([], online)
    yield family
    servers = GaugeMetricFamily("zdm_servers", "Servers registered (with or without an agent)")
    servers.add_metric([], total)
    yield servers


def _timestamp(naive_utc: datetime) -> float:
    return naive_utc.replace(tzinfo=UTC).timestamp()
