"""The beat scheduler's rules on a real database and a real Redis, with injected time."""

import threading
from datetime import timedelta

import pytest

from app.extensions import db
from app.models import BackupJob, Run, Server
from app.services.run_lifecycle import AGENT_DID_NOT_START
from app.timeutil import utcnow
from tests.jobs import every_minute, later, queued_messages, runs_of
from workers.beat.scheduler import fire_due_jobs, fire_job
from workers.control.sweeps import sweep


def test_due_job_becomes_one_queued_run_sent_to_its_server_queue(register, broker):
    job = register(**every_minute())
    fire_time = job.next_run_at

    recorded = fire_due_jobs(later(job))

    assert [(r.trigger, r.state, r.scheduled_for) for r in recorded] == [
        ("schedule", "queued", fire_time)
    ]
    assert queued_messages(broker) == [
        {
            "task": "zdm.backup.run",
            "run_id": recorded[0].id,
            "job_id": job.id,
            "job_name": "daily-backup-web",
        }
    ]
    db.session.refresh(job)
    assert job.next_run_at == fire_time + timedelta(minutes=1)


def test_nothing_fires_before_its_time(register, broker):
    job = register(**every_minute())

    assert fire_due_jobs(job.next_run_at - timedelta(seconds=1)) == []
    assert runs_of(job.id) == []


def test_firing_again_at_the_same_instant_records_nothing(register, broker):
    job = register(**every_minute())
    fire_time = job.next_run_at

    fire_due_jobs(later(job))
    again = fire_job(
        job.id, fire_time, fire_time + timedelta(seconds=1)
    )  # a beat with a stale read

    assert again is None
    assert len(runs_of(job.id)) == 1
    assert len(queued_messages(broker)) == 1


def test_two_beats_fire_once(app, register, broker):
    job = register(**every_minute())
    now = later(job)
    results, barrier = [], threading.Barrier(2)

    def beat():
        with app.app_context():
            barrier.wait(timeout=10)
            results.append(len(fire_due_jobs(now)))
            db.session.remove()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results) == [0, 1]
    assert len(runs_of(job.id)) == 1
    assert len(queued_messages(broker)) == 1


def test_overlapping_fire_time_records_skipped(register, broker):
    job = register(**every_minute())
    first = fire_due_jobs(later(job))[0]
    first.state = "running"
    db.session.commit()
    db.session.refresh(job)

    second = fire_due_jobs(later(job))

    assert [(r.state, r.trigger) for r in second] == [("skipped", "schedule")]
    assert "still" in second[0].error_message
    assert len(queued_messages(broker)) == 1


def test_missed_times_within_grace_run_once_and_the_others_are_recorded_missed(
    register, broker, app
):
    job = register(**every_minute())
    first = job.next_run_at
    # beat was down for 10 minutes; the newest missed fire time is 30 s ago
    now = first + timedelta(minutes=10, seconds=30)

    recorded = fire_due_jobs(now)

    assert [(r.state, r.scheduled_for) for r in recorded] == [
        ("missed", first),
        ("queued", now.replace(second=0, microsecond=0)),
    ]
    # the one missed record names the ten fire times it stands for
    assert "10 fire times" in recorded[0].error_message
    assert len(queued_messages(broker)) == 1
    db.session.refresh(job)
    assert job.next_run_at > now
    assert fire_due_jobs(now) == []


def test_a_beat_behind_its_load_records_every_fire_time_it_reaches_late(register, broker):
    """Beat outrun on purpose: it reaches the job 90 s after its fire time, when the next
    one has passed too. Before, that fire time was merged into the next with no record."""
    job = register(**every_minute())
    first = job.next_run_at

    recorded = fire_due_jobs(first + timedelta(seconds=90))

    assert [(r.state, r.scheduled_for) for r in recorded] == [
        ("missed", first),
        ("queued", first + timedelta(minutes=1)),
    ]
    assert recorded[0].error_message.startswith("beat was late")
    assert recorded[0].finished_at is not None


def test_missed_times_outside_grace_record_one_missed_run(register, broker, app):
    job = register(**{"schedule": {"type": "daily", "description": "0 2 * * *"}})
    grace = app.config["ZDM_MISFIRE_GRACE_SECONDS"]
    now = job.next_run_at + timedelta(days=3, seconds=grace + 60)

    recorded = fire_due_jobs(now)

    assert [r.state for r in recorded] == ["missed"]
    assert "misfire grace" in recorded[0].error_message
    assert queued_messages(broker) == []
    db.session.refresh(job)
    assert job.next_run_at > now


def test_stopped_job_never_fires(client, auth, register, broker):
    job = register(**every_minute())
    now = later(job)

    client.post(f"/api/v1/backups/{job.id}/stop", headers=auth)

    assert fire_due_jobs(now) == []


def test_auto_start_no_never_fires_until_started(client, auth, register, broker):
    job = register(autoStart="no", **every_minute())
    assert fire_due_jobs(utcnow() + timedelta(days=1)) == []

    client.post(f"/api/v1/backups/{job.id}/start", headers=auth)

    db.session.refresh(job)
    assert job.status == "scheduled"
    assert len(fire_due_jobs(later(job))) == 1


def test_deleted_job_never_fires(client, auth, register, broker):
    job = register(**every_minute())
    now = later(job)

    client.delete(f"/api/v1/backups/{job.id}", headers=auth)

    assert fire_due_jobs(now) == []


def test_schedule_change_is_honoured_from_the_next_fire_time(client, auth, register, broker):
    job = register(**every_minute())
    client.put(
        f"/api/v1/backups/{job.id}",
        json={"schedule": {"type": "hourly", "description": "7 * * * *"}},
        headers=auth,
    )
    db.session.refresh(job)

    assert job.next_run_at.minute == 7
    assert fire_due_jobs(job.next_run_at - timedelta(seconds=1)) == []
    assert len(fire_due_jobs(later(job))) == 1


def test_unstarted_run_is_missed_at_the_next_fire_time(register, broker):
    job = register(**every_minute())
    first = fire_due_jobs(later(job))[0]
    db.session.refresh(job)

    second = fire_due_jobs(later(job))  # no agent took the first one

    assert [r.state for r in runs_of(job.id)] == ["missed", "queued"]
    assert "agent offline" in runs_of(job.id)[0].error_message
    assert "agent offline" in runs_of(job.id)[0].log[-1]
    assert runs_of(job.id)[0].finished_at is not None
    assert second[0].id != first.id


@pytest.mark.parametrize("path", ["beat", "sweep"])
def test_a_run_missed_while_its_agent_was_online_does_not_blame_the_agent(register, broker, path):
    """Its agent sent heartbeats all along (the run's message was lost in a Redis restart, or
    the agent was busy): the reason must not say the agent was offline."""
    job = register(**every_minute())
    first = fire_due_jobs(later(job))[0]
    db.session.refresh(job)
    now = later(job)  # the next fire time: the first run's deadline
    server = db.session.get(Server, job.server_id)
    server.online, server.last_seen = True, now - timedelta(seconds=5)  # a heartbeat 5 s ago
    db.session.commit()

    if path == "beat":
        fire_due_jobs(now)
    else:
        sweep(now)

    missed = db.session.get(Run, first.id)
    assert (missed.state, missed.error_message) == ("missed", AGENT_DID_NOT_START)
    assert missed.log[-1].endswith(AGENT_DID_NOT_START)
    assert "offline" not in missed.error_message


def test_once_job_fires_once_and_deactivates(register, broker):
    at = (utcnow() + timedelta(hours=1)).replace(microsecond=0)
    job = register(schedule={"type": "once", "description": at.isoformat() + "Z"})

    assert len(fire_due_jobs(at + timedelta(seconds=1))) == 1

    db.session.refresh(job)
    assert (job.active, job.next_run_at) == (False, None)
    assert fire_due_jobs(at + timedelta(days=1)) == []


def test_job_status_follows_its_runs(register, broker):
    job = register(**every_minute())
    run = fire_due_jobs(later(job))[0]
    assert db.session.get(BackupJob, job.id).status == "scheduled"

    run.state = "running"
    from app.services.run_lifecycle import finish_run, refresh_job_status

    refresh_job_status(job)
    assert job.status == "running"
    finish_run(run, "success")
    assert job.status == "scheduled"
