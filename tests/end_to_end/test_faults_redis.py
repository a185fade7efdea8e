"""Redis stopped and started again (with and without persistence) while a backup runs, a job
falls due, and a run waits in a queue for an agent that is not there (issue 11): no fire time
lost or doubled, stranded runs sent again, agents and beat reconnect without a restart."""

import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from app.extensions import db
from app.models import BackupJob
from app.timeutil import utcnow
from tests.end_to_end.fault_stack import FaultStack, MiB, make_random_image, points_of, register
from tests.end_to_end.fault_stack import runs_of as _runs_of
from tests.end_to_end.processes import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("faults-redis")]

HERE, AWAY = "local-server-01", "away-server-02"
OUTAGE_SECONDS = 12
FINISHED = ("success", "failed", "canceled", "missed", "skipped")


@pytest.fixture(params=["appendonly", "no-persistence"])
def stack(request, tmp_path, worker_id):
    redis_args = (
        ("--appendonly", "yes", "--appendfsync", "always") if request.param == "appendonly" else ()
    )
    stack = FaultStack(tmp_path, worker_id, redis_args=redis_args)
    stack.env["ZDM_MISFIRE_GRACE_SECONDS"] = "600"
    small, slow, away = tmp_path / "small.img", tmp_path / "slow.img", tmp_path / "away.img"
    make_random_image(small, 2 * MiB)
    make_random_image(slow, 16 * MiB)
    make_random_image(away, 2 * MiB)
    stack.away_partitions = {"/dev/sdc1": away}
    with stack:
        stack.start_control()
        stack.start_beat()
        stack.start_agent("agent", HERE, {"/dev/sda1": small, "/dev/sda2": slow})
        stack.start_agent("away", AWAY, stack.away_partitions)  # both register at once
        stack.wait_registered(HERE, 2)
        stack.wait_registered(AWAY, 1)
        stack.setup_admin_and_repository()
        yield stack


def test_redis_restarted_mid_backup_with_a_job_due_and_a_run_waiting(stack):
    app = stack.app
    daily = {"type": "daily", "description": "0 3 * * *"}
    with app.app_context():
        client = app.test_client()
        slow_job = register(stack, client, "slow", HERE, "/dev/sda2", autoStart="no",
                            networkLimit=4, compression=None, schedule=daily)  # fmt: skip
        # active, daily: its fire time is moved into the outage below, its next is hours away
        minute_job = register(stack, client, "due-in-outage", HERE, "/dev/sda1", schedule=daily)
        away_job = register(
            stack, client, "away", AWAY, "/dev/sdc1", autoStart="no", schedule=daily
        )
        # The agent of AWAY goes away: a run sent to it waits in its queue, in Redis.
        stack.processes.pop("away").stop()

        client.post(f"/api/v1/backups/{slow_job}/run", headers=stack.auth)
        wait_until(
            lambda: [r for r in _runs_of(slow_job) if r.state == "running" and r.bytes_read],
            90,
            what="the slow backup running",
        )
        waiting = client.post(f"/api/v1/backups/{away_job}/run", headers=stack.auth)
        waiting_id = waiting.get_json()["data"]["runId"]
        wait_until(
            lambda: [r for r in _runs_of(away_job) if r.dispatched_at is not None],
            30,
            what="the away run sent",
        )
        pids = {name: p.popen.pid for name, p in stack.processes.items()}

        stack.stop_redis()
        # A fire time of the active job falls inside the outage.
        due = utcnow().replace(microsecond=0) + timedelta(seconds=3)
        db.session.execute(
            update(BackupJob).where(BackupJob.id == minute_job).values(next_run_at=due)
        )
        db.session.commit()
        time.sleep(OUTAGE_SECONDS)
        stack.start_redis_again()
        stack.start_agent("away", AWAY, stack.away_partitions)

        def settled():
            slow = _runs_of(slow_job)
            minute = [r for r in _runs_of(minute_job) if r.scheduled_for == due]
            away = _runs_of(away_job)
            if (
                slow
                and all(r.state in FINISHED for r in slow)
                and (slow[0].state == "success" or len(slow) == 2)
                and minute
                and all(r.state in FINISHED for r in minute)
                and away
                and all(r.state in FINISHED for r in away)
            ):
                return slow, minute, away
            return None

        try:
            slow, minute, away = wait_until(settled, 150, interval=1, what="every run decided")
        except TimeoutError:
            print(stack.logs_tail(80))
            for job in (slow_job, minute_job, away_job):
                print([(r.id, r.trigger, r.scheduled_for, r.state, r.error_message, r.dispatched_at)
                       for r in _runs_of(job)])  # fmt: skip
            raise

        # beat, the control worker and the agent reconnected: none of them was restarted
        for name in ("beat", "control", "agent"):
            assert stack.processes[name].popen.poll() is None, stack.processes[name].tail(60)
            assert stack.processes[name].popen.pid == pids[name]
        # the fire time in the outage: exactly one run, sent once Redis was back, successful
        assert [(r.trigger, r.state) for r in minute] == [("schedule", "success")], [
            r.error_message for r in minute
        ]
        # the run stranded in a queue Redis lost (or kept) reached its agent
        assert [(r.id, r.state) for r in away] == [(waiting_id, "success")], [
            r.error_message for r in away
        ]
        # the backup running through the outage is decided once
        if slow[0].state == "success":
            assert len(slow) == 1
        else:
            assert [(r.trigger, r.state) for r in slow] == [
                ("manual", "failed"),
                ("retry", "success"),
            ]
        for job in (slow_job, minute_job, away_job):
            runs = _runs_of(job)
            keys = [(r.scheduled_for, r.trigger) for r in runs]
            assert len(keys) == len(set(keys)), f"a fire time doubled: {keys}"
            assert sorted(p.run_id for p in points_of(job)) == sorted(
                r.id for r in runs if r.state == "success"
            )
        db.session.remove()
