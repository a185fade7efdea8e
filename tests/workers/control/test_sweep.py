"""The control worker's sweep: lost runs fail and are retried once; unstarted runs are missed.

Leases are judged by the database's clock: a heartbeat is stale when it is older than the lease
by that clock, whatever the agent's or this process's clock says.
"""

import time
from datetime import timedelta

import pytest

import workers.agent.lease
import workers.agent.runner
from app.extensions import db
from app.models import Restore, Run
from app.services.run_lifecycle import claim, lease_seconds
from app.timeutil import utcnow
from tests.jobs import every_minute, later, queued_messages, runs_of
from workers.beat.scheduler import fire_due_jobs
from workers.control.sweeps import WORKER_LOST, sweep

SHORT_LEASE = 2.0


@pytest.fixture
def short_lease(monkeypatch):
    """ZDM_RUN_LEASE_SECONDS=2 for the agent's heartbeat and the sweeper, in this process."""
    monkeypatch.setenv("ZDM_RUN_LEASE_SECONDS", str(SHORT_LEASE))
    return SHORT_LEASE


def stale(seconds: float | None = None):
    """A heartbeat time this many seconds ago (default: just beyond the lease)."""
    seconds = lease_seconds() + 1 if seconds is None else seconds
    return utcnow() - timedelta(seconds=seconds)


def start(run, heartbeat):
    run.state, run.started_at, run.heartbeat_at = "running", heartbeat, heartbeat
    db.session.commit()


def test_run_without_heartbeat_fails_as_worker_lost_and_is_retried_once(register, broker):
    job = register(**every_minute())
    run = fire_due_jobs(later(job))[0]
    start(run, stale())
    broker.delete("zdm.server.web-server-01")

    result = sweep(later(job))

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
    start(fire_due_jobs(later(job))[0], stale())
    sweep(later(job))
    retry = runs_of(job.id)[1]
    start(retry, stale())

    sweep(later(job))

    assert [r.state for r in runs_of(job.id)] == ["failed", "failed"]


def test_fresh_heartbeat_is_left_alone(register, broker):
    job = register(**every_minute())
    start(fire_due_jobs(later(job))[0], stale(lease_seconds() - 10))

    sweep(later(job) + timedelta(hours=1))  # the sweeper's own clock does not judge leases

    assert [r.state for r in runs_of(job.id)] == ["running"]


def test_two_sweeps_retry_once(register, broker):
    job = register(**every_minute())
    start(fire_due_jobs(later(job))[0], stale())

    sweep(later(job))
    sweep(later(job))

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
    restore = Restore(
        recovery_point=point, server_id=1, target="/tmp/x", state="running", heartbeat_at=stale()
    )
    db.session.add_all([point, restore])
    db.session.commit()

    sweep(later(job))

    db.session.refresh(restore)
    assert (restore.state, restore.error_message) == ("failed", WORKER_LOST)


def test_an_agent_with_its_clock_hours_ahead_that_dies_is_lost_after_the_lease(
    register, broker, short_lease, monkeypatch
):
    """Its heartbeat must not carry its clock: a heartbeat stamped hours ahead would keep a
    dead agent's run `running` for hours."""
    ahead = utcnow() + timedelta(hours=3)
    for module in (workers.agent.runner, workers.agent.lease):
        monkeypatch.setattr(module, "utcnow", lambda: ahead, raising=False)
    job = register(**every_minute())
    run = fire_due_jobs(later(job))[0]
    assert claim(Run, run.id)  # the agent starts the run, then dies

    sweep(later(job))
    assert [r.state for r in runs_of(job.id)] == ["running"]  # within the lease
    time.sleep(short_lease + 0.5)
    sweep(later(job))

    assert [(r.state, r.error_message) for r in runs_of(job.id)] == [
        ("failed", WORKER_LOST),
        ("queued", None),
    ]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_after_the_database_was_unreachable_leases_are_judged_only_a_lease_later(monkeypatch):
    """No agent could renew a lease while the database was out of reach: the sweep that
    reaches it again waits a full lease before declaring anything lost (issue 11)."""
    from workers.control.sweeps import LeaseWatch

    monkeypatch.setenv("ZDM_RUN_LEASE_SECONDS", "60")
    monkeypatch.setenv("ZDM_SWEEP_SECONDS", "30")
    clock = Clock()
    watch = LeaseWatch(clock)
    assert watch.reached() is False  # a worker that just started has not watched a lease yet
    clock.now += 30
    assert watch.reached() is False
    clock.now += 30
    assert watch.reached() is True  # reached it for a full lease
    clock.now += 30
    watch.unreachable()  # a sweep failed on the database
    clock.now += 30
    assert watch.reached() is False
    clock.now += 59
    assert watch.reached() is False
    clock.now += 1
    assert watch.reached() is True
    clock.now += 91  # no sweep for longer than a lease and a sweep interval: not watched
    assert watch.reached() is False
    clock.now += 60
    assert watch.reached() is True


def test_a_sweep_that_may_not_judge_leases_declares_nothing_lost(register, broker):
    job = register(**every_minute())
    run = fire_due_jobs(later(job))[0]
    start(run, stale())

    result = sweep(later(job), judge_leases=False)

    assert result["lost_runs"] == [] and [r.state for r in runs_of(job.id)] == ["running"]
    assert sweep(later(job))["lost_runs"]  # judged at the next sweep that may


def test_a_run_lost_after_its_point_was_recorded_succeeds_and_is_not_retried(register, broker):
    """The agent died between recording the point and marking the run `success` (chaos found
    it: its retry made a second point for the fire time). The backup is whole and listed."""
    from app.models import RecoveryPoint

    job = register(**every_minute())
    run = fire_due_jobs(later(job))[0]
    start(run, stale())
    db.session.add(RecoveryPoint(
        engine_id="20261128T140000Z-abc123", job_id=job.id, run_id=run.id,
        repository_id=job.repository_id, server_id=job.server_id,
        partition_name=job.partition.name, partition_kind=job.partition.kind,
        engine_job=job.engine_job, mode="full", source_size=1, stored_size=1,
    ))  # fmt: skip
    db.session.commit()

    result = sweep(later(job))

    assert result["lost_runs"] == []
    [run] = runs_of(job.id)
    assert (run.state, run.error_message, run.finished_at is not None) == ("success", None, True)
    assert "after recording recovery point 20261128T140000Z-abc123" in run.log[-1]
    assert db.session.query(RecoveryPoint).filter_by(job_id=job.id).count() == 1


@pytest.mark.usefixtures("short_lease")
def test_a_run_sent_but_never_started_is_sent_again_less_and_less_often(register, broker):
    """A killed agent may hold the run's message unacknowledged (where no other agent sees it
    until the visibility timeout): the sweep sends it again after a lease, then each time
    after as long again as it had waited (chaos found runs missed for this)."""
    from workers.control.sweeps import _unclaimed_too_long

    job = register(**every_minute())
    run = fire_due_jobs(later(job))[0]
    broker.delete("zdm.server.web-server-01")  # the message a killed agent took with it
    now = utcnow()

    def sent(ago: float, queued_ago: float) -> list[int]:
        db.session.query(Run).filter(Run.id == run.id).update({
            "dispatched_at": now - timedelta(seconds=ago),
            "queued_at": now - timedelta(seconds=queued_ago),
        })  # fmt: skip
        db.session.commit()
        return sweep()["resent_runs"]

    # (sent after this Redis started: a message sent before is sent again at once)
    deadline = time.monotonic() + 10
    while broker.info("server")["uptime_in_seconds"] < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sent(ago=SHORT_LEASE / 4, queued_ago=SHORT_LEASE / 4) == []  # not yet a lease
    assert sent(ago=SHORT_LEASE + 1, queued_ago=SHORT_LEASE + 1) == [run.id]
    assert [m["run_id"] for m in queued_messages(broker)] == [run.id]
    assert [r.state for r in runs_of(job.id)] == ["queued"]
    # less and less often: after as long again as it had waited when last sent
    run, lease = db.session.get(Run, run.id), timedelta(seconds=SHORT_LEASE)
    run.queued_at, run.dispatched_at = now - timedelta(seconds=100), now - timedelta(seconds=30)
    assert not _unclaimed_too_long(run, now, lease, restarted=None)  # waited 70 s: wait 70 s
    run.dispatched_at = now - timedelta(seconds=71)
    assert _unclaimed_too_long(run, now, lease, restarted=None)
    db.session.rollback()
