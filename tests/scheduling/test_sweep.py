"""The control worker's sweep: lost runs fail and are retried once; unstarted runs are missed."""

from datetime import timedelta

from app.extensions import db
from app.models import Restore
from tests.scheduling.conftest import every_minute, later, queued_messages, runs_of
from workers.housekeeping import WORKER_LOST, sweep
from workers.progress import LEASE_SECONDS
from workers.scheduler import fire_due_jobs


def start(run, at):
    run.state, run.started_at, run.heartbeat_at = "running", at, at
    db.session.commit()


def test_run_without_heartbeat_fails_as_worker_lost_and_is_retried_once(register, broker):
    job = register(**every_minute())
    now = later(job)
    run = fire_due_jobs(now)[0]
    start(run, now)
    broker.delete("zdm.server.web-server-01")

    result = sweep(now + timedelta(seconds=LEASE_SECONDS + 1))

    first, retry = runs_of(job.id)
    assert (first.state, first.error_message) == ("failed", WORKER_LOST)
    assert (retry.trigger, retry.state, retry.scheduled_for) == (
        "retry",
        "queued",
        first.scheduled_for,
    )
    assert result["lost_runs"] == [retry.id]
    assert [m["run_id"] for m in queued_messages(broker)] == [retry.id]


def test_a_lost_retry_is_not_retried_again(register, broker):
    job = register(**every_minute())
    now = later(job)
    start(fire_due_jobs(now)[0], now)
    sweep(now + timedelta(seconds=LEASE_SECONDS + 1))
    retry = runs_of(job.id)[1]
    start(retry, now + timedelta(seconds=LEASE_SECONDS + 2))

    sweep(now + timedelta(seconds=3 * LEASE_SECONDS))

    assert [r.state for r in runs_of(job.id)] == ["failed", "failed"]


def test_fresh_heartbeat_is_left_alone(register, broker):
    job = register(**every_minute())
    now = later(job)
    start(fire_due_jobs(now)[0], now)

    sweep(now + timedelta(seconds=LEASE_SECONDS - 1))

    assert [r.state for r in runs_of(job.id)] == ["running"]


def test_two_sweeps_retry_once(register, broker):
    job = register(**every_minute())
    now = later(job)
    start(fire_due_jobs(now)[0], now)
    after = now + timedelta(seconds=LEASE_SECONDS + 1)

    sweep(after)
    sweep(after)

    assert [(r.trigger, r.state) for r in runs_of(job.id)] == [
        ("schedule", "failed"),
        ("retry", "queued"),
    ]


def test_queued_run_no_agent_took_is_missed_after_next_fire_time(register, broker):
    job = register(**every_minute())
    now = later(job)
    fire_due_jobs(now)

    sweep(now + timedelta(seconds=30))
    assert [r.state for r in runs_of(job.id)] == ["queued"]

    sweep(now + timedelta(seconds=61))
    assert [r.state for r in runs_of(job.id)] == ["missed"]


def test_lost_restore_fails(register, broker, seed_inventory):
    from app.models import RecoveryPoint

    job = register(**every_minute())
    point = RecoveryPoint(engine_id="p1", job_id=job.id, repository_id=1, server_id=1,
                          partition_name="/dev/sda1", partition_kind="block", engine_job="job-1", mode="full")  # fmt: skip
    now = later(job)
    restore = Restore(
        recovery_point=point, server_id=1, target="/tmp/x", state="running", heartbeat_at=now
    )
    db.session.add_all([point, restore])
    db.session.commit()

    sweep(now + timedelta(seconds=LEASE_SECONDS + 1))

    db.session.refresh(restore)
    assert (restore.state, restore.error_message) == ("failed", WORKER_LOST)
