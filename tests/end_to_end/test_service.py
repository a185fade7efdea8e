"""The whole service in real processes: beat (two of them), the control worker and an agent
on a real Redis and a real database, backing up a real image file and restoring it.

Timing settings are shortened through the environment (lease 6 s, sweep every 2 s) so the
scenarios of SPEC "Scheduling guarantees" play out in minutes.
"""

import hashlib
import json
import os
import time
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import update

import config
from app import create_app
from app.extensions import db
from app.models import BackupJob, Partition, RecoveryPoint, Restore, Run, Server
from app.timeutil import utcnow
from tests.conftest import _worker_database, bearer, make_user
from tests.end_to_end.processes import (
    Process,
    celery,
    flask_cli,
    free_port,
    service_env,
    wait_until,
)
from workers import engine

# One stack of processes for the module: keep its tests on one xdist worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("service-stack")]

SERVER = "web-server-01"
MiB = 1024 * 1024


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            digest.update(block)
    return digest.hexdigest()


def make_image(path, size: int, random_part: int) -> None:
    """Random bytes (incompressible), a repeated text, and a zero tail."""
    with open(path, "wb") as f:
        f.write(os.urandom(random_part))
        text = b"ZDM backup test line\n" * 4096
        while f.tell() < size * 3 // 4:
            f.write(text)
        f.truncate(size)


class Inbox:
    """A real SMTP server's mailbox (aiosmtpd on loopback)."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append((envelope.rcpt_tos, envelope.content.decode(errors="replace")))
        return "250 OK"


class Stack:
    def __init__(self, tmp, database_url, redis_url):
        self.tmp = tmp
        self.logs = tmp / "logs"
        self.logs.mkdir()
        self.images = {"/dev/sda1": tmp / "sda1.img", "/dev/sda2": tmp / "sda2.img"}
        make_image(self.images["/dev/sda1"], 8 * MiB, 2 * MiB)
        make_image(self.images["/dev/sda2"], 24 * MiB, 24 * MiB)  # slow under networkLimit
        self.repository = tmp / "repository"
        self.restores = tmp / "restores"  # the agent makes its restore root on first use
        self.inbox = Inbox()
        self.smtp = Controller(self.inbox, hostname="127.0.0.1", port=free_port())
        self.smtp.start()
        self.env = service_env(
            database_url,
            tmp,
            redis_url,
            ZDM_AGENT_CENTER="CENTER-001",
            ZDM_AGENT_SERVER=SERVER,
            ZDM_AGENT_PARTITIONS=",".join(f"{k}={v}" for k, v in self.images.items()),
            ZDM_AGENT_HEARTBEAT_SECONDS="2",
            ZDM_RUN_LEASE_SECONDS="6",
            ZDM_SWEEP_SECONDS="2",
            ZDM_SMTP_URL=f"smtp://127.0.0.1:{self.smtp.port}",
            ZDM_RESTORE_ROOTS=str(self.restores),
        )
        assert flask_cli(self.env, "zdm", "init").returncode == 0

        restore_roots = [str(self.restores)]

        class StackConfig(config.Config):
            SQLALCHEMY_DATABASE_URI = database_url
            REDIS_URL = redis_url
            ZDM_RESTORE_ROOTS = restore_roots

        self.app = create_app(StackConfig)
        # The tests call the API inside one long app context: let each request read afresh.
        self.app.before_request(lambda: db.session.expire_all())
        self.processes: dict[str, Process] = {}
        self.start("control", celery("worker", "-Q", "zdm.control", "-n", "control@%h", "-c", "1",
                                     "--without-mingle", "--without-gossip", "-l", "INFO"))  # fmt: skip
        self.start_agent()
        self.start_beat("beat1")

    def start(self, name, args):
        self.processes[name] = Process(name, args, self.env, self.logs)

    def start_agent(self, name="agent"):
        self.start(name, celery("worker", "-Q", f"zdm.server.{SERVER}", "-n", f"{name}@%h", "-c", "2",
                                "--without-mingle", "--without-gossip", "-l", "INFO"))  # fmt: skip

    def start_beat(self, name):
        self.start(name, celery("beat", "-S", "workers.beat.scheduler:ZdmScheduler", "-l", "INFO",
                                f"--pidfile={self.tmp / name}.pid", f"--schedule={self.tmp / name}.db"))  # fmt: skip

    def stop(self):
        for process in self.processes.values():
            process.stop()
        self.smtp.stop()

    def logs_tail(self) -> str:
        return "\n".join(f"--- {n}\n{p.tail()}" for n, p in self.processes.items())


@pytest.fixture(scope="module")
def stack(tmp_path_factory, worker_id, redis_url):
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    base = os.environ.get("TEST_DATABASE_URL")
    tmp = tmp_path_factory.mktemp("stack")
    url = (
        _worker_database(base, f"{worker_id}_stack") if base else f"sqlite:///{tmp / 'zdm.sqlite3'}"
    )
    stack = Stack(tmp, url, redis_url)
    try:
        with stack.app.app_context():
            wait_until(lambda: _agent_registered(), 60, what="agent registration")
            admin = make_user()
            stack.auth = bearer(admin)
        client = stack.app.test_client()
        for resource, data in [
            (
                "repositories",
                {"center": "CENTER-001", "type": "local", "path": str(stack.repository)},
            ),
        ]:
            assert (
                client.post(f"/api/v1/{resource}", json=data, headers=stack.auth).status_code == 201
            )
        yield stack
    except BaseException:
        print(stack.logs_tail())
        raise
    finally:
        stack.stop()


def _agent_registered():
    db.session.remove()
    server = db.session.query(Server).filter_by(name=SERVER).one_or_none()
    return server is not None and len(server.partitions) == 2


@pytest.fixture
def api(stack):
    with stack.app.app_context():
        yield stack.app.test_client()
        db.session.remove()


def register(stack, api, job_name, partition, **changes):
    data = {
        "center": "CENTER-001",
        "server": SERVER,
        "type": "full",
        "partition": [partition],
        "repository": {"id": 1, "type": "local", "path": str(stack.repository)},
        "jobName": job_name,
        "user": "admin@example.com",
        "schedule": {"type": "custom", "description": "* * * * *"},
        "compression": "lz4",
        **changes,
    }
    data = {k: v for k, v in data.items() if v is not None}  # None: leave the option out
    response = api.post("/api/v1/backups", json=data, headers=stack.auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["data"]["results"][0]["id"]


def runs_of(job_id, **filters):
    db.session.remove()
    return db.session.query(Run).filter_by(job_id=job_id, **filters).order_by(Run.id).all()


def test_agent_registered_its_server_and_is_online(stack, api):
    server = api.get(f"/api/v1/servers/{SERVER}", headers=stack.auth).get_json()["data"]

    assert server["online"] is True and server["center"]["name"] == "CENTER-001"
    # its capabilities, from its heartbeat: this agent has no master key
    assert server["agent"] == {"engineVersion": engine.ENGINE_VERSION, "masterKeyFingerprint": None}
    assert {p["name"]: p["kind"] for p in server["partitions"]} == {
        "/dev/sda1": "block",
        "/dev/sda2": "block",
    }
    assert server["partitions"][1]["size"] == 24 * MiB


def test_every_minute_job_runs_on_time_once_with_two_beats_and_restores_identically(stack, api):
    stack.start_beat("beat2")
    job_id = register(stack, api, "every-minute", "/dev/sda1", rotation=1)

    def two_finished_runs():
        done = [
            r for r in runs_of(job_id, trigger="schedule") if r.state not in ("queued", "running")
        ]
        return done if len(done) >= 2 else None

    try:
        finished = wait_until(two_finished_runs, 170, interval=1, what="two scheduled runs")
    except TimeoutError:
        print(stack.logs_tail())
        raise

    runs = runs_of(job_id, trigger="schedule")
    fire_times = [r.scheduled_for for r in runs]
    assert len(fire_times) == len(set(fire_times)), "two runs for one fire time"
    assert [r.state for r in finished[:2]] == ["success", "success"], [
        r.error_message for r in finished
    ]
    for run in finished[:2]:
        assert run.scheduled_for.second == 0
        assert (run.mode, run.bytes_read, run.percent) == ("full", 8 * MiB, 100.0)
        assert run.bytes_written > 0 and run.speed > 0  # the engine's totals, its average
        assert timedelta(0) <= run.started_at - run.scheduled_for < timedelta(seconds=15)
    points = api.get(f"/api/v1/backups/{job_id}/recovery-points", headers=stack.auth).get_json()[
        "data"
    ]["items"]
    # rotation 1: after the second run only its point remains, in the API and the repository
    assert len(points) == 1 and points[0]["compression"] == "lz4"
    assert points[0]["runId"] == max(r.id for r in runs if r.state == "success")
    assert [
        p.id
        for p in engine.list_points(stack.repository, db.session.get(BackupJob, job_id).engine_job)
    ] == [db.session.get(RecoveryPoint, points[0]["id"]).engine_id]

    target = stack.restores / "restored-sda1.img"
    response = api.post(
        "/api/v1/restores",
        json={"recoveryPoint": points[0]["id"], "server": SERVER, "target": str(target)},
        headers=stack.auth,
    )
    assert response.status_code == 202
    restore_id = response.get_json()["data"]["id"]

    def restore_finished():
        data = api.get(f"/api/v1/restores/{restore_id}", headers=stack.auth).get_json()["data"]
        return data if data["state"] not in ("queued", "running") else None

    restore = wait_until(restore_finished, 60, what="restore")
    assert restore["state"] == "success", restore
    assert restore["bytesRestored"] == 8 * MiB and restore["percent"] == 100.0
    assert restore["bytesTotal"] == 8 * MiB and restore["speed"] > 0  # the average
    assert sha256(target) == sha256(stack.images["/dev/sda1"])
    api.post(f"/api/v1/backups/{job_id}/stop", headers=stack.auth)


def test_agent_killed_mid_run_is_worker_lost_then_retried_once(stack, api):
    # 24 MiB of random data at 16 Mbit/s takes about 12 s: time to kill the agent mid-run.
    job_id = register(stack, api, "slow-job", "/dev/sda2", autoStart="no", networkLimit=16,
                      compression=None, schedule={"type": "daily", "description": "0 3 * * *"},
                      mailEvent="ops@example.com")  # fmt: skip
    run_id = api.post(f"/api/v1/backups/{job_id}/run", headers=stack.auth).get_json()["data"][
        "runId"
    ]

    def progressing():
        data = api.get(f"/api/v1/backups/monitoring/job/{job_id}", headers=stack.auth).get_json()[
            "data"
        ]
        run = data["run"]
        moving = run and run["state"] == "running" and run["bytesWritten"] > 0
        return run if moving else None

    live = wait_until(progressing, 60, what="progress of the running backup")
    assert 0 < live["percent"] < 100 and live["speed"] > 0
    assert live["bytesRead"] >= live["bytesWritten"] > 0

    stack.processes["agent"].kill()
    stack.start_agent("agent-restarted")

    def retried_and_done():
        runs = runs_of(job_id)
        retry = [r for r in runs if r.trigger == "retry"]
        return runs if retry and retry[0].state in ("success", "failed") else None

    runs = wait_until(retried_and_done, 120, interval=0.5, what="worker lost and retry")
    first = next(r for r in runs if r.id == run_id)
    assert first.state == "failed" and "worker lost" in first.error_message
    assert first.finished_at - first.heartbeat_at < timedelta(minutes=2)
    assert [(r.trigger, r.state) for r in runs] == [("manual", "failed"), ("retry", "success")]
    db.session.remove()
    assert db.session.query(RecoveryPoint).filter_by(job_id=job_id).count() == 1
    # mailEvent: one mail for the failure, one when the retry succeeded after it
    mails = wait_until(
        lambda: len(stack.inbox.messages) >= 2 and stack.inbox.messages, 30, what="two mails"
    )
    assert [m[0] for m in mails] == [["ops@example.com"], ["ops@example.com"]]
    assert "FAILED" in mails[0][1] and "worker lost" in mails[0][1]
    assert "succeeded again" in mails[1][1]


def test_stop_cancels_a_running_backup_without_leaving_a_point(stack, api):
    job_id = register(stack, api, "stopped-job", "/dev/sda2", autoStart="no", networkLimit=8,
                      compression=None, schedule={"type": "daily", "description": "0 4 * * *"})  # fmt: skip
    api.post(f"/api/v1/backups/{job_id}/run", headers=stack.auth)
    wait_until(
        lambda: [r for r in runs_of(job_id) if r.state == "running" and r.bytes_read > 0],
        60,
        what="running",
    )

    api.post(f"/api/v1/backups/{job_id}/stop", headers=stack.auth)

    runs = wait_until(
        lambda: [r for r in runs_of(job_id) if r.state == "canceled"], 60, what="canceled run"
    )
    assert runs[0].finished_at is not None
    db.session.remove()
    assert db.session.query(RecoveryPoint).filter_by(job_id=job_id).count() == 0
    assert db.session.get(BackupJob, job_id).status == "waiting"


def test_beat_restarted_catches_up_within_grace_and_records_missed_outside(stack, api):
    for name in [n for n in stack.processes if n.startswith("beat")]:
        stack.processes.pop(name).kill()
    # daily at a time 12 hours away, so no real fire time falls in the simulated outage
    far = {"type": "daily", "description": f"0 {(utcnow().hour + 12) % 24} * * *"}
    recent = register(
        stack,
        api,
        "missed-recently",
        "/dev/sda1",
        schedule=far,
    )
    long_ago = register(
        stack,
        api,
        "missed-long-ago",
        "/dev/sda1",
        schedule=far,
    )
    now = utcnow().replace(microsecond=0)
    # What beat finds after an outage: fire times that passed while it was down.
    db.session.execute(
        update(BackupJob)
        .where(BackupJob.id == recent)
        .values(next_run_at=now - timedelta(minutes=2))
    )
    db.session.execute(
        update(BackupJob)
        .where(BackupJob.id == long_ago)
        .values(next_run_at=now - timedelta(hours=3))
    )
    db.session.commit()

    stack.start_beat("beat-restarted")

    caught_up = wait_until(
        lambda: [r for r in runs_of(recent) if r.state == "success"], 90, what="catch-up run"
    )
    missed = wait_until(lambda: runs_of(long_ago), 30, what="missed run")
    assert len(runs_of(recent)) == 1 and caught_up[0].scheduled_for == now - timedelta(minutes=2)
    assert [r.state for r in missed] == ["missed"]
    db.session.remove()
    for job_id in (recent, long_ago):
        assert db.session.get(BackupJob, job_id).next_run_at > now


FLOWER_AUTH = ("ops", "flower-pass")


@pytest.fixture(scope="module")
def flower(stack):
    """Flower on the stack, started as the Procfile does; its base URL."""
    port = free_port()
    stack.env.update(
        ZDM_FLOWER_PORT=str(port), ZDM_FLOWER_USER="ops", ZDM_FLOWER_PASSWORD="flower-pass"
    )
    stack.start("flower", celery("flower", "--conf=workers/flowerconfig.py"))
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(base), 60, what="flower")
    return base


def flower_tasks(base, name, key, value):
    """Flower's tasks (its own HTTP API) named `name` whose kwargs say `key: value`."""
    import requests

    tasks = requests.get(f"{base}/api/tasks", auth=FLOWER_AUTH, timeout=10).json()
    return [
        t
        for t in tasks.values()
        if t.get("name") == name and f"'{key}': {value!r}" in (t.get("kwargs") or "")
    ]


def test_flower_shows_workers_and_tasks_behind_basic_auth(stack, api, flower):
    import requests

    base = flower
    assert requests.get(f"{base}/api/workers", timeout=10).status_code == 401

    def agent_listed():
        workers = requests.get(f"{base}/api/workers?refresh=1", auth=FLOWER_AUTH, timeout=30).json()
        return next((w for name, w in workers.items() if name.startswith("agent")), None)

    agent = wait_until(agent_listed, 60, interval=1, what="agent in flower")
    assert f"zdm.server.{SERVER}" in [q["name"] for q in agent["active_queues"]]

    job_id = register(stack, api, "flower-job", "/dev/sda1", autoStart="no",
                      schedule={"type": "daily", "description": "0 7 * * *"})  # fmt: skip
    run_id = api.post(f"/api/v1/backups/{job_id}/run", headers=stack.auth).get_json()["data"][
        "runId"
    ]

    def succeeded():
        found = flower_tasks(base, "zdm.backup.run", "run_id", run_id)
        return found if found and found[0]["state"] == "SUCCESS" else None

    [task] = wait_until(succeeded, 60, interval=1, what="task in flower")
    assert "'job_name': 'flower-job'" in task["kwargs"] and f"'job_id': {job_id}" in task["kwargs"]
    assert task["result"] == "'success'"
    # the task list (its page and the rows it loads) shows the job's id and name
    page = requests.get(f"{base}/tasks", auth=FLOWER_AUTH, timeout=10).text
    assert '<th data-column="kwargs">' in page and '<th data-column="exception">' in page
    rows = requests.get(
        f"{base}/tasks/datatable",
        params={"draw": 1, "start": 0, "length": 100, "order[0][column]": 0,
                "columns[0][data]": "received", "order[0][dir]": "desc"},
        auth=FLOWER_AUTH,
        timeout=10,
    ).json()["data"]  # fmt: skip
    [row] = [r for r in rows if r["uuid"] == task["uuid"]]
    assert "'job_name': 'flower-job'" in row["kwargs"] and f"'job_id': {job_id}" in row["kwargs"]
    # the agent's lines of the run (text logs, the default) end with its job and run
    context = f"[job={job_id} jobName=flower-job run={run_id}]"
    agent_lines = [
        line for log in stack.logs.glob("agent*.log") for line in log.read_text().splitlines()
    ]
    of_run = [line for line in agent_lines if line.endswith(context)]
    assert any("full backup of /dev/sda1 started" in line for line in of_run), agent_lines[-20:]
    assert any("backup ended success" in line for line in of_run)


def test_flower_shows_failed_runs_and_restores_as_failure_and_cancels_as_revoked(
    stack, api, flower
):
    import requests

    # A partition the server had but its agent no longer serves: the run fails on the agent.
    server = db.session.query(Server).filter_by(name=SERVER).one()
    server.partitions.append(Partition(name="/dev/sdz9", kind="block", size=MiB, position=9))
    db.session.commit()
    failing = register(stack, api, "flower-fails", "/dev/sdz9", autoStart="no",
                       schedule={"type": "daily", "description": "0 7 * * *"})  # fmt: skip
    failed_run = api.post(f"/api/v1/backups/{failing}/run", headers=stack.auth).get_json()["data"][
        "runId"
    ]
    # A slow backup, stopped while it runs.
    stopped = register(stack, api, "flower-stopped", "/dev/sda2", autoStart="no",
                       networkLimit=8, compression=None,
                       schedule={"type": "daily", "description": "0 4 * * *"})  # fmt: skip
    canceled_run = api.post(f"/api/v1/backups/{stopped}/run", headers=stack.auth).get_json()[
        "data"
    ]["runId"]
    wait_until(
        lambda: [r for r in runs_of(stopped) if r.state == "running" and r.bytes_read > 0],
        60,
        what="running",
    )
    api.post(f"/api/v1/backups/{stopped}/stop", headers=stack.auth)
    # A restore of a point whose file is gone: it fails on the agent.
    restorable = register(stack, api, "flower-restore", "/dev/sda1", autoStart="no",
                          schedule={"type": "daily", "description": "0 7 * * *"})  # fmt: skip
    api.post(f"/api/v1/backups/{restorable}/run", headers=stack.auth)
    [point] = wait_until(
        lambda: db.session.query(RecoveryPoint).filter_by(job_id=restorable).all(), 60, what="point"
    )
    (stack.repository / "points" / point.engine_id).unlink()
    response = api.post(
        "/api/v1/restores",
        json={"recoveryPoint": point.id, "server": SERVER,
              "target": str(stack.restores / "flower-restore.img")},
        headers=stack.auth,
    )  # fmt: skip
    assert response.status_code == 202, response.get_data(as_text=True)
    restore_id = response.get_json()["data"]["id"]

    def finished(name, key, value, state):
        def check():
            found = flower_tasks(flower, name, key, value)
            return found if found and found[0]["state"] == state else None

        return wait_until(check, 90, interval=1, what=f"{name} {value} {state} in flower")

    [failed] = finished("zdm.backup.run", "run_id", failed_run, "FAILURE")
    [canceled] = finished("zdm.backup.run", "run_id", canceled_run, "REVOKED")
    [restore] = finished("zdm.restore.run", "restore_id", restore_id, "FAILURE")

    db.session.remove()
    run = db.session.get(Run, failed_run)
    assert run.state == "failed" and "/dev/sdz9 is not served by this agent" in run.error_message
    assert run.error_message in failed["exception"] and "RunFailed" in failed["exception"]
    assert failed["retries"] == 0 and "'job_name': 'flower-fails'" in failed["kwargs"]
    assert db.session.get(Run, canceled_run).state == "canceled"
    assert canceled["result"] is None and "'job_name': 'flower-stopped'" in canceled["kwargs"]
    error = db.session.get(Restore, restore_id).error_message
    assert f"Recovery point {point.engine_id} does not exist" in error
    assert error in restore["exception"] and "'job_name': 'flower-restore'" in restore["kwargs"]
    # Flower's "Failed" counter of the agent counts them; nothing was retried or redelivered
    workers = requests.get(f"{flower}/workers?json=1", auth=FLOWER_AUTH, timeout=30).json()
    agents = [w for w in workers["data"] if w["hostname"].startswith("agent")]
    assert sum(w.get("task-failed", 0) for w in agents) >= 2
    assert sum(w.get("task-retried", 0) for w in agents) == 0
    # acknowledged: none of their messages is left unacked in Redis (kombu's `unacked` hash)
    import redis

    broker = redis.Redis.from_url(stack.env["REDIS_URL"])
    unacked = [json.loads(raw)[0]["headers"]["id"] for raw in broker.hvals("unacked")]
    assert {failed["uuid"], canceled["uuid"], restore["uuid"]} & set(unacked) == set()
    time.sleep(3)  # a redelivered message would have been received again by now
    for key, value in (("run_id", failed_run), ("run_id", canceled_run)):
        assert len(flower_tasks(flower, "zdm.backup.run", key, value)) == 1
    assert len(flower_tasks(flower, "zdm.restore.run", "restore_id", restore_id)) == 1
    assert [r.state for r in runs_of(failing)] == ["failed"]
    assert [r.state for r in runs_of(stopped)] == ["canceled"]
    assert db.session.get(Restore, restore_id).state == "failed"


def _answers(base):
    import requests

    try:
        return requests.get(base + "/healthcheck", timeout=2).status_code in (200, 401)
    except requests.RequestException:
        return False
