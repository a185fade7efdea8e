"""The database unreachable for a minute (PostgreSQL behind a link every process and the API
use, cut: connections dropped, new ones refused) while a backup runs and a job falls due
(issue 11): the API answers 503 in its envelope, beat and the agent retry and catch up, and
the backup that finished during the outage is recorded afterwards (no orphaned point)."""

import os
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
from workers import engine

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("faults-database"),
    pytest.mark.skipif(
        not os.environ.get("TEST_DATABASE_URL"), reason="a PostgreSQL server to cut off"
    ),
]

SERVER = "db-outage-server"
OUTAGE_SECONDS = 60
FINISHED = ("success", "failed", "canceled", "missed", "skipped")


@pytest.fixture
def stack(tmp_path, worker_id):
    stack = FaultStack(tmp_path, worker_id, database_behind_link=True)
    small, slow = tmp_path / "small.img", tmp_path / "slow.img"
    make_random_image(small, 2 * MiB)
    make_random_image(slow, 12 * MiB)
    with stack:
        stack.start_control()
        stack.start_beat()
        stack.agent = stack.start_agent("agent", SERVER, {"/dev/sda1": small, "/dev/sda2": slow})
        stack.wait_registered(SERVER, 2)
        stack.setup_admin_and_repository()
        yield stack


def test_database_unreachable_for_a_minute(stack):
    app = stack.app
    daily = {"type": "daily", "description": "0 3 * * *"}
    with app.app_context():
        client = app.test_client()
        # 12 MiB at 4 Mbit/s: about 25 s, so it ends inside the outage
        slow_job = register(stack, client, "slow", SERVER, "/dev/sda2", autoStart="no",
                            networkLimit=4, compression=None, schedule=daily)  # fmt: skip
        due_job = register(stack, client, "due-in-outage", SERVER, "/dev/sda1", schedule=daily)
        due = utcnow().replace(microsecond=0) + timedelta(seconds=15)
        db.session.execute(update(BackupJob).where(BackupJob.id == due_job).values(next_run_at=due))
        db.session.commit()
        client.post(f"/api/v1/backups/{slow_job}/run", headers=stack.auth)
        wait_until(
            lambda: [r for r in _runs_of(slow_job) if r.state == "running" and r.bytes_read],
            90,
            what="the slow backup running",
        )
        db.session.remove()
        pids = {name: p.popen.pid for name, p in stack.processes.items()}

        stack.database_link.cut()
        cut_at = time.monotonic()
        answer = client.get("/api/v1/backups", headers=stack.auth)
        assert answer.status_code == 503, answer.get_data(as_text=True)
        body = answer.get_json()
        assert body["success"] is False and body["error"] and body["requestID"], body
        while time.monotonic() - cut_at < OUTAGE_SECONDS:
            time.sleep(1)
        stack.database_link.restore()
        db.session.remove()

        def settled():
            slow = _runs_of(slow_job)
            caught_up = [r for r in _runs_of(due_job) if r.scheduled_for == due]
            if (
                slow
                and all(r.state in FINISHED for r in slow)
                and (slow[0].state == "success" or len(slow) == 2)
                and caught_up
                and all(r.state in FINISHED for r in caught_up)
            ):
                return slow, caught_up
            return None

        try:
            slow, caught_up = wait_until(settled, 150, interval=1, what="every run decided")
        except TimeoutError:
            print(stack.logs_tail(80))
            for job in (slow_job, due_job):
                print([(r.id, r.trigger, r.scheduled_for, r.state, r.error_message)
                       for r in _runs_of(job)])  # fmt: skip
            raise

        assert client.get("/api/v1/backups", headers=stack.auth).status_code == 200
        for name in ("beat", "control", "agent"):
            assert stack.processes[name].popen.poll() is None, stack.processes[name].tail(60)
            assert stack.processes[name].popen.pid == pids[name]
        # beat caught up the fire time that fell in the outage (well within the misfire rules)
        assert [(r.trigger, r.state) for r in caught_up] == [("schedule", "success")], [
            r.error_message for r in caught_up
        ]
        # the backup that finished during the outage was recorded once the database was back:
        # its agent kept trying while holding the run, and the sweep, back from its own
        # outage, gave the lease time to be renewed before judging it
        assert [(r.trigger, r.state) for r in slow] == [("manual", "success")], [
            (r.error_message, r.log) for r in slow
        ]
        for job in (slow_job, due_job):
            recorded = points_of(job)
            assert sorted(p.run_id for p in recorded) == sorted(
                r.id for r in _runs_of(job) if r.state == "success"
            )
            engine_job = db.session.get(BackupJob, job).engine_job
            on_disk = {p.id for p in engine.list_points(stack.repository, engine_job)}
            assert {p.engine_id for p in recorded} == on_disk  # no orphan, nothing missing
        agent_log = stack.processes["agent"].tail(400)
        assert "recording the recovery point: the database is unreachable" in agent_log


def test_an_agent_started_while_the_database_is_unreachable_registers_once_it_is_back(
    tmp_path, worker_id
):
    """The agent's host came up before the database was reachable: the agent does not give
    up (before, its registration failed once at start and it never sent a heartbeat)."""
    stack = FaultStack(tmp_path, worker_id)
    image = tmp_path / "small.img"
    make_random_image(image, 1 * MiB)
    partitions = {"/dev/sda1": image}
    with stack:
        stack.start_control()
        stack.agent_env("late-server", partitions, behind_links=True)  # its links, not yet used
        stack.links["late-server"]["database"].cut()
        agent = stack.start_agent("agent", "late-server", partitions, behind_links=True)
        wait_until(lambda: "could not register the agent" in agent.tail(200), 60,
                   what="the agent meeting the unreachable database")  # fmt: skip
        time.sleep(3)  # a heartbeat or two fails as well
        stack.links["late-server"]["database"].restore()
        stack.wait_registered("late-server", 1, seconds=30)
        stack.setup_admin_and_repository()
        with stack.app.app_context():
            client = stack.app.test_client()
            job = register(stack, client, "late", "late-server", "/dev/sda1", autoStart="no")
            client.post(f"/api/v1/backups/{job}/run", headers=stack.auth)
            runs = wait_until(
                lambda: [r for r in _runs_of(job) if r.state in FINISHED], 60,
                what="the agent's first backup",
            )  # fmt: skip
            assert [r.state for r in runs] == ["success"], [r.error_message for r in runs]
        assert agent.popen.poll() is None
