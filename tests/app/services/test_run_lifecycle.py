"""The races a review found, each pinned down: nothing runs twice, nothing gets stuck or lost."""

from datetime import timedelta

from app.extensions import db
from app.models import BackupJob
from app.services.run_lifecycle import create_run, lease_seconds
from app.timeutil import utcnow
from tests.app.api.helpers import assert_error
from tests.jobs import every_minute, later, queued_messages, runs_of
from workers.beat.scheduler import fire_due_jobs
from workers.control.sweeps import RESEND_AFTER_SECONDS, sweep


def test_next_run_put_back_on_a_fired_time_does_not_stick(register, broker):
    job = register(**every_minute())
    fire_time = job.next_run_at
    fire_due_jobs(later(job))
    # a schedule change computed just before beat fired, committed just after
    job.next_run_at = fire_time
    db.session.commit()

    assert fire_due_jobs(fire_time + timedelta(seconds=1)) == []

    db.session.refresh(job)
    assert job.next_run_at == fire_time + timedelta(minutes=1)
    assert len(runs_of(job.id)) == 1


def test_database_allows_one_unfinished_run_per_job(register, broker):
    job = register(**every_minute())
    first = create_run(job, "manual", job.next_run_at, "queued")
    db.session.commit()

    second = create_run(job, "manual", job.next_run_at + timedelta(seconds=1), "queued")

    assert first is not None and second is None
    assert len(runs_of(job.id)) == 1


def test_beat_firing_beside_a_manual_run_records_skipped(client, auth, register, broker):
    job = register(**every_minute())
    client.post(f"/api/v1/backups/{job.id}/run", headers=auth)

    fired = fire_due_jobs(later(job))

    assert [r.state for r in fired] == ["skipped"]
    assert sorted(r.trigger for r in runs_of(job.id)) == ["manual", "schedule"]


def test_run_committed_but_never_sent_is_sent_by_the_sweeper(register, broker):
    job = register(**every_minute())
    stranded = create_run(job, "manual", job.next_run_at, "queued")  # the sender died here
    db.session.commit()

    sweep(stranded.queued_at + timedelta(seconds=RESEND_AFTER_SECONDS - 1))
    assert queued_messages(broker) == []

    result = sweep(stranded.queued_at + timedelta(seconds=RESEND_AFTER_SECONDS + 1))

    assert result["resent_runs"] == [stranded.id]
    assert [m["run_id"] for m in queued_messages(broker)] == [stranded.id]
    assert runs_of(job.id)[0].dispatched_at is not None


def test_every_lost_run_tells_the_control_worker_for_mail(register, broker):
    job = register(**every_minute())
    run = fire_due_jobs(later(job))[0]
    stale = utcnow() - timedelta(seconds=lease_seconds() + 1)
    run.state, run.heartbeat_at, run.trigger = "running", stale, "retry"  # a lost retry
    db.session.commit()

    sweep(later(job))

    assert [r.state for r in runs_of(job.id)] == ["failed"]
    assert broker.llen("zdm.control") == 1


def test_delete_with_purge_and_broker_down_changes_nothing(client, auth, register, broker_down):
    job = register(**every_minute())
    with broker_down():
        response = client.delete(f"/api/v1/backups/{job.id}?purge=true", headers=auth)

    assert_error(response, 503)
    db.session.expire_all()
    kept = db.session.get(BackupJob, job.id)
    assert kept is not None and kept.active is True and kept.status == "scheduled"
