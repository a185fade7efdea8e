"""The agent on another host: it reaches Redis and the database only through links the test
controls (`LinkProxy`, loopback). The link is cut for 90 s in the middle of a backup — live
connections dropped, new ones refused — and then restored (issue 11).

On SQLite the database is a local file, so only the Redis link can be cut; the test still runs.
"""

import time

import pytest

from app.extensions import db
from app.models import BackupJob
from tests.end_to_end.fault_stack import FaultStack, MiB, make_random_image, points_of, register
from tests.end_to_end.fault_stack import runs_of as _runs_of
from tests.end_to_end.processes import wait_until
from workers import engine

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("faults-link")]

SERVER = "remote-server-01"
CUT_SECONDS = 90


@pytest.fixture
def stack(tmp_path, worker_id):
    stack = FaultStack(tmp_path, worker_id)
    image = tmp_path / "sdb1.img"
    make_random_image(image, 24 * MiB)
    stack.image = image
    with stack:
        stack.start_control()
        stack.start_beat()
        stack.agent = stack.start_agent("agent", SERVER, {"/dev/sdb1": image}, behind_links=True)
        stack.wait_registered(SERVER, 1)
        stack.setup_admin_and_repository()
        yield stack


def test_link_cut_for_90_s_mid_backup_decides_the_run_once_and_the_agent_resumes(stack):
    app = stack.app
    with app.app_context():
        client = app.test_client()
        # 24 MiB of random data at 4 Mbit/s: about 50 s, so the cut falls in the middle.
        job_id = register(stack, client, "remote-job", SERVER, "/dev/sdb1", autoStart="no",
                          networkLimit=4, compression=None,
                          schedule={"type": "daily", "description": "0 3 * * *"})  # fmt: skip
        response = client.post(f"/api/v1/backups/{job_id}/run", headers=stack.auth)
        first_id = response.get_json()["data"]["runId"]

        def runs_of():
            return _runs_of(job_id)

        wait_until(
            lambda: [r for r in runs_of() if r.state == "running" and (r.bytes_read or 0) > 0],
            90,
            what="the backup running with progress",
        )
        agent_pid = stack.agent.popen.pid

        stack.cut(SERVER)
        cut_at = time.monotonic()
        # While the link is down the rest of the service goes on: the control worker may
        # declare the run lost (its lease is 6 s) and queue its retry.
        while time.monotonic() - cut_at < CUT_SECONDS:
            time.sleep(1)
        refused = sum(link.refused for link in stack.proxies(SERVER))
        stack.restore_link(SERVER)

        assert refused > 0, "the agent did not even try to reconnect during the cut"

        def decided():
            runs = runs_of()
            first = next(r for r in runs if r.id == first_id)
            if first.state == "success":
                return runs
            retries = [r for r in runs if r.trigger == "retry"]
            if first.state == "failed" and retries and retries[0].state in ("success", "failed"):
                return runs
            return None

        try:
            runs = wait_until(
                decided, 180, interval=1, what="the run's fate after the link came back"
            )
        except TimeoutError:
            print(stack.logs_tail(120))
            print([(r.id, r.trigger, r.state, r.error_message) for r in runs_of()])
            raise

        assert stack.agent.popen.poll() is None and stack.agent.popen.pid == agent_pid, (
            "the agent process did not outlive its link"
        )
        first = next(r for r in runs if r.id == first_id)
        outcomes = [(r.trigger, r.state) for r in runs]
        if first.state == "success":  # finished and recorded: no retry
            assert outcomes == [("manual", "success")]
        else:  # worker lost and retried, once
            assert "worker lost" in first.error_message
            assert outcomes == [("manual", "failed"), ("retry", "success")], [
                (r.trigger, r.state, r.error_message) for r in runs
            ]
        # one point per successful run, none for the lost one
        points = points_of(job_id)
        successful = {r.id for r in runs if r.state == "success"}
        assert sorted(p.run_id for p in points) == sorted(successful)
        engine_job = db.session.get(BackupJob, job_id).engine_job
        on_disk = {p.id for p in engine.list_points(stack.repository, engine_job)}
        assert {p.engine_id for p in points} <= on_disk

        # the agent resumed without a restart: a later run of it succeeds
        later = client.post(f"/api/v1/backups/{job_id}/run", headers=stack.auth)
        assert later.status_code in (200, 202), later.get_data(as_text=True)
        later_id = later.get_json()["data"]["runId"]
        try:
            run = wait_until(
                lambda: next(
                    (
                        r
                        for r in runs_of()
                        if r.id == later_id and r.state not in ("queued", "running")
                    ),
                    None,
                ),
                150,
                interval=1,
                what="a later run of the agent",
            )
        except TimeoutError:
            print(stack.logs_tail(120))
            raise
        assert run.state == "success", run.error_message
        assert stack.agent.popen.poll() is None and stack.agent.popen.pid == agent_pid


def test_agent_outlives_short_redis_link_drops_while_a_backup_runs(stack):
    """The broker connection of an agent with a task in hand (acks late: an unacknowledged
    message) is dropped three times: the worker reconnects each time instead of exiting on
    kombu's "Unrecoverable error" (issue 11), and the backup still ends once."""
    app = stack.app
    with app.app_context():
        client = app.test_client()
        job_id = register(stack, client, "flapping-job", SERVER, "/dev/sdb1", autoStart="no",
                          networkLimit=4, compression=None,
                          schedule={"type": "daily", "description": "0 3 * * *"})  # fmt: skip
        client.post(f"/api/v1/backups/{job_id}/run", headers=stack.auth)
        wait_until(
            lambda: [
                r for r in _runs_of(job_id) if r.state == "running" and (r.bytes_read or 0) > 0
            ],
            90,
            what="the backup running with progress",
        )
        redis_link = stack.links[SERVER]["redis"]
        for _drop in range(3):
            # The broadcast (pub/sub) connection of the worker's remote control breaks first,
            # a moment before the one waiting for tasks: the order that made the worker exit.
            redis_link.cut(first_marked=0.5)
            time.sleep(2)
            redis_link.restore()
            time.sleep(4)
            assert stack.agent.popen.poll() is None, stack.agent.tail(60)
        runs = wait_until(
            lambda: (
                (r := _runs_of(job_id))
                and all(x.state not in ("queued", "running") for x in r)
                and r
            ),
            150,
            interval=1,
            what="the backup's end",
        )
        assert runs[0].state == "success" or "worker lost" in runs[0].error_message
        assert len(points_of(job_id)) == sum(r.state == "success" for r in runs)
        # Still consuming: a run sent after the backup ended is taken and succeeds. (A worker
        # that hit the unrecoverable error stops once its running task is over.)
        quick_id = register(stack, client, "after-the-drops", SERVER, "/dev/sdb1", autoStart="no",
                            schedule={"type": "daily", "description": "0 4 * * *"})  # fmt: skip
        client.post(f"/api/v1/backups/{quick_id}/run", headers=stack.auth)
        try:
            [run] = wait_until(
                lambda: [r for r in _runs_of(quick_id) if r.state not in ("queued", "running")],
                90,
                interval=1,
                what="a run after the drops",
            )
        except TimeoutError:
            print(stack.agent.tail(80))
            raise
        assert run.state == "success", run.error_message
        assert stack.agent.popen.poll() is None, stack.agent.tail(60)
