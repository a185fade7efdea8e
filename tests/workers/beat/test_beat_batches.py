"""Beat's fan-out at size: batches, two beats sharing it, a broker failing in the middle.

Jobs are copied in bulk from one registered through the API (registering 1,200 through
the API would only make the test slow), on the suite's real database and Redis."""

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from app.extensions import db
from app.models import BackupJob, Run
from tests.jobs import QUEUE, every_minute, later
from workers.beat.scheduler import BATCH_SIZE, fire_due, fire_due_jobs
from workers.control.sweeps import RESEND_AFTER_SECONDS, resend_undispatched_runs

JOBS = 2 * BATCH_SIZE + 200  # three batches


def copies(job: BackupJob, count: int) -> list[int]:
    """`count` more jobs like `job`, due at the same fire time; returns all the job ids."""
    skip = ("id", "uuid", "engine_job", "name")
    columns = [c.key for c in BackupJob.__table__.columns if c.key not in skip]
    template = {key: getattr(job, key) for key in columns}
    rows = []
    for n in range(count):
        made = str(uuid.uuid4())
        rows.append({**template, "name": f"copy-{n}", "uuid": made, "engine_job": f"job-{made}"})
    db.session.execute(insert(BackupJob), rows)
    db.session.commit()
    return list(db.session.scalars(select(BackupJob.id).order_by(BackupJob.id)))


def scheduled_runs_per_job() -> dict[int, int]:
    rows = db.session.execute(
        select(Run.job_id, func.count()).where(Run.trigger == "schedule").group_by(Run.job_id)
    )
    return dict(rows.all())


def test_a_fan_out_larger_than_a_batch_gives_every_job_one_run_sent_once(register, broker):
    job = register(**every_minute())
    ids = copies(job, JOBS - 1)
    now = later(job)

    recorded = fire_due(now, budget=300)

    assert len(recorded) == JOBS
    assert scheduled_runs_per_job() == {job_id: 1 for job_id in ids}
    assert broker.llen(QUEUE) == JOBS
    undispatched = db.session.scalar(
        select(func.count()).select_from(Run).where(Run.dispatched_at.is_(None))
    )
    assert undispatched == 0
    due_again = db.session.scalar(
        select(func.count()).select_from(BackupJob).where(BackupJob.next_run_at <= now)
    )
    assert due_again == 0


def test_two_beats_share_a_fan_out_and_fire_each_job_once(app, register, broker):
    job = register(**every_minute())
    ids = copies(job, JOBS - 1)
    now = later(job)
    made, barrier = {}, threading.Barrier(2)

    def beat(name):
        with app.app_context():
            barrier.wait(timeout=10)
            made[name] = len(fire_due(now, budget=300))
            db.session.remove()

    threads = [threading.Thread(target=beat, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sum(made.values()) == JOBS
    assert scheduled_runs_per_job() == {job_id: 1 for job_id in ids}
    assert broker.llen(QUEUE) == JOBS
    if db.engine.dialect.name == "postgresql":  # SKIP LOCKED: each beat takes other jobs
        assert made["a"] > 0 and made["b"] > 0


def test_a_broker_down_during_the_fan_out_leaves_the_runs_for_the_sweep(
    app, register, broker, broker_down
):
    job = register(**every_minute())
    ids = copies(job, 9)

    with broker_down():
        recorded = fire_due_jobs(later(job))

    # nothing is lost: every fire time has its queued run, none marked as sent
    assert [r.state for r in recorded] == ["queued"] * len(ids)
    assert all(r.dispatched_at is None for r in recorded)
    assert broker.llen(QUEUE) == 0

    resent = resend_undispatched_runs(
        max(r.queued_at for r in recorded) + timedelta(seconds=RESEND_AFTER_SECONDS + 1)
    )

    assert sorted(resent) == sorted(r.id for r in recorded)
    assert broker.llen(QUEUE) == len(ids)


@pytest.mark.parametrize("late_minutes", [1, 5])
def test_every_job_of_a_late_batch_records_its_passed_fire_times(register, broker, late_minutes):
    job = register(**every_minute())
    ids = copies(job, BATCH_SIZE + 9)
    first = job.next_run_at

    recorded = fire_due_jobs(first + timedelta(minutes=late_minutes, seconds=30))

    by_job = {}
    for run in recorded:
        by_job.setdefault(run.job_id, []).append((run.state, run.scheduled_for))
    newest = first + timedelta(minutes=late_minutes)
    assert by_job == {job_id: [("missed", first), ("queued", newest)] for job_id in ids}
    assert broker.llen(QUEUE) == len(ids)
