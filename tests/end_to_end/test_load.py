"""Load while working: 1,000 registrations from 20 concurrent clients against real gunicorn
(as the Procfile starts it) while a real agent is backing up, on the test database.

The registrations race on purpose: each job name is asked for four times, for /dev/sda1,
for /dev/sda1 and /dev/sda2, for /dev/sda2, and for /dev/sda1 again, by requests shuffled
among the clients. Whatever order they land in, each (name, partition) becomes one job,
and every request gets an answer the document allows: 201 (all registered), 207 (some),
409 (none: duplicates), never a 5xx or a dropped connection. Then the database holds
exactly the jobs the answers named: the same ids, nothing more.
"""

import os
import queue
import random
import threading
import time

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.app.api.openapi_check import assert_payload_documented
from tests.conftest import _worker_database
from tests.end_to_end.processes import (
    BIN,
    Process,
    celery,
    flask_cli,
    free_port,
    service_env,
    wait_for_http,
    wait_until,
)
from tests.end_to_end.test_service import make_image

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("load")]

SERVER = "web-server-01"
MiB = 1024 * 1024
CLIENTS = 20
NAMES = 250  # four requests each: 1,000 registrations
SHAPES = (["/dev/sda1"], ["/dev/sda1", "/dev/sda2"], ["/dev/sda2"], ["/dev/sda1"])


@pytest.fixture
def service(tmp_path, worker_id, redis_url):
    """gunicorn and an agent of web-server-01 (two image partitions) on a new database."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    base = os.environ.get("TEST_DATABASE_URL")
    url = (
        _worker_database(base, f"{worker_id}_load")
        if base
        else f"sqlite:///{tmp_path / 'zdm.sqlite3'}"
    )
    images = {"/dev/sda1": tmp_path / "sda1.img", "/dev/sda2": tmp_path / "sda2.img"}
    make_image(images["/dev/sda1"], 4 * MiB, 1 * MiB)
    make_image(images["/dev/sda2"], 24 * MiB, 24 * MiB)  # random: slow under networkLimit
    env = service_env(
        url,
        tmp_path,
        redis_url,
        ZDM_PASSWORD="s3cret-pass",
        ZDM_AGENT_CENTER="CENTER-001",
        ZDM_AGENT_SERVER=SERVER,
        ZDM_AGENT_PARTITIONS=",".join(f"{k}={v}" for k, v in images.items()),
        ZDM_AGENT_HEARTBEAT_SECONDS="2",
    )
    assert flask_cli(env, "zdm", "init").returncode == 0
    assert (
        flask_cli(env, "zdm", "create-user", "admin@example.com", "--role", "admin").returncode == 0
    )
    token = flask_cli(env, "zdm", "create-token", "admin@example.com").stdout.strip()
    logs = tmp_path / "logs"
    logs.mkdir()
    port = free_port()
    processes = [
        Process("web", [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2",
                        "wsgi:app"], env, logs),
        Process("agent", celery("worker", "-Q", f"zdm.server.{SERVER}", "-n", "agent@%h", "-c", "2",
                                "--without-mingle", "--without-gossip", "-l", "INFO"), env, logs),
    ]  # fmt: skip
    base_url = f"http://127.0.0.1:{port}/api/v1"
    engine = create_engine(url)
    try:
        wait_for_http(base_url + "/health")
        yield base_url, {"Authorization": f"Bearer {token}"}, engine, tmp_path
    except BaseException:
        for process in processes:
            print(f"--- {process.name}\n{process.tail()}")
        raise
    finally:
        engine.dispose()
        for process in processes:
            process.stop()


def registration(name: str, partitions: list[str], repository: str) -> dict:
    return {
        "center": "CENTER-001",
        "server": SERVER,
        "type": "full",
        "partition": partitions,
        "repository": {"id": 1, "type": "local", "path": repository},
        "jobName": name,
        "user": "admin@example.com",
        "schedule": {"type": "daily", "description": "0 2 * * *"},
        "autoStart": "no",
    }


def register_concurrently(url: str, auth: dict, bodies: list[dict]) -> list:
    """Each body POSTed once by one of CLIENTS threads; (body, status, payload) or
    (body, exception) per request, in no particular order."""
    work: queue.Queue = queue.Queue()
    for item in bodies:
        work.put(item)
    answers: list = []
    lock = threading.Lock()

    def client():
        with requests.Session() as session:
            while True:
                try:
                    item = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    response = session.post(url, json=item, headers=auth, timeout=60)
                    answer = (item, response.status_code, response.json())
                except (requests.RequestException, ValueError) as error:
                    answer = (item, error)
                with lock:
                    answers.append(answer)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a client is still waiting"
    return answers


def test_a_thousand_concurrent_registrations_while_an_agent_backs_up(service):
    api, auth, engine, tmp = service
    wait_until(lambda: _partitions_registered(api, auth), 60, what="agent registration")
    repository = str(tmp / "repository")
    created = requests.post(f"{api}/repositories", headers=auth, timeout=10,
                            json={"center": "CENTER-001", "type": "local", "path": repository})  # fmt: skip
    assert created.status_code == 201, created.text
    # The backup the agent works on meanwhile: 24 MiB of random data at 8 Mbit/s, ~25 s.
    slow = registration("backing-up", ["/dev/sda2"], repository)
    slow.update(networkLimit=8, compression="lz4")
    job_id = requests.post(f"{api}/backups", json=slow, headers=auth, timeout=10).json()["data"][
        "results"
    ][0]["id"]
    run_id = requests.post(f"{api}/backups/{job_id}/run", headers=auth, timeout=10).json()["data"][
        "runId"
    ]
    wait_until(lambda: _run(api, auth, run_id)["state"] == "running", 30, what="backup running")

    bodies = [
        registration(f"load-{n:03d}", shape, repository) for n in range(NAMES) for shape in SHAPES
    ]
    random.Random(11).shuffle(bodies)
    started = time.monotonic()
    answers = register_concurrently(f"{api}/backups", auth, bodies)
    elapsed = time.monotonic() - started
    backup_during_load = _run(api, auth, run_id)

    dropped = [a for a in answers if len(a) == 2]
    assert not dropped, f"{len(dropped)} requests got no answer, e.g. {dropped[0][1]!r}"
    assert len(answers) == len(bodies)
    statuses = {}
    answered_ids = []
    for body, status, payload in answers:
        statuses[status] = statuses.get(status, 0) + 1
        results = payload["data"]["results"]
        ok = [r for r in results if r["state"] == "success"]
        expected = 201 if len(ok) == len(results) else 207 if ok else 409
        assert status == expected, (status, payload)
        assert [r["partition"] for r in results] == body["partition"]
        for result in results:
            assert result["jobName"] == body["jobName"]
            if result["state"] == "success":
                answered_ids.append(result["id"])
            else:
                assert result["id"] is None and result["errorMessage"], result
    assert set(statuses) <= {201, 207, 409}, statuses
    spec = requests.get(f"{api}/openapi.json", timeout=10).json()
    for status in statuses:  # one answer of each status, against the document
        _, _, payload = next(a for a in answers if a[1] == status)
        assert_payload_documented(spec, "POST", "/api/v1/backups", status, payload)
    assert len(answered_ids) == len(set(answered_ids)) == 2 * NAMES  # one per (name, partition)

    with engine.connect() as conn:
        stored = conn.execute(
            text(
                "SELECT j.id, j.name, p.name FROM backup_jobs j JOIN partitions p"
                " ON p.id = j.partition_id WHERE j.name LIKE 'load-%'"
            )
        ).all()
    assert sorted(row[0] for row in stored) == sorted(answered_ids)
    assert len({(row[1], row[2]) for row in stored}) == len(stored)

    # The backup went on meanwhile, and finished with its point.
    assert backup_during_load["state"] in ("running", "success"), backup_during_load
    finished = wait_until(
        lambda: (
            _run(api, auth, run_id)["state"] in ("success", "failed") and _run(api, auth, run_id)
        ),
        90,
        interval=0.5,
        what="the backup's end",
    )
    assert finished["state"] == "success", finished
    points = requests.get(f"{api}/backups/{job_id}/recovery-points", headers=auth, timeout=10)
    assert len(points.json()["data"]["items"]) == 1
    print(f"1,000 registrations from {CLIENTS} clients in {elapsed:.1f} s: {statuses}")


def _partitions_registered(api: str, auth: dict) -> bool:
    response = requests.get(f"{api}/servers/{SERVER}/partitions", headers=auth, timeout=10)
    return response.status_code == 200 and len(response.json()["data"]["partitions"]) == 2


def _run(api: str, auth: dict, run_id: int) -> dict:
    return requests.get(f"{api}/runs/{run_id}", headers=auth, timeout=10).json()["data"]
