"""ZDM_LOG_FORMAT=json: every process of the service (web under gunicorn as the Procfile starts
it, beat, the control worker, an agent) writes one JSON object a line, and the lines of a run
name its job and run (app/log_format.py)."""

import json
import os
import shlex
import time
from datetime import timedelta

import pytest
import requests
from sqlalchemy import create_engine, update

from app.models import BackupJob
from app.timeutil import utcnow
from tests.end_to_end.processes import (
    BIN,
    ROOT,
    Process,
    celery,
    flask_cli,
    free_port,
    service_env,
    wait_for_http,
    wait_until,
)

pytestmark = pytest.mark.slow

SERVER = "json-agent-01"


def procfile_web(port: int) -> list[str]:
    """The Procfile's web command, on a port of the test's own."""
    line = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")
    )
    words = shlex.split(line.removeprefix("web:"))
    words[words.index("--bind") + 1] = f"127.0.0.1:{port}"
    words[words.index("--workers") + 1] = "2"
    return [str(BIN / words[0]), *words[1:]]


def json_lines(process: Process) -> list[dict]:
    """Every line of the process's output, each parsed as one JSON object."""
    lines = [line for line in process.log_path.read_text().splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            pytest.fail(f"{process.name} wrote a line that is not JSON: {line!r}")
        assert isinstance(entry, dict), line
        assert {"time", "level", "logger", "message"} <= entry.keys(), line
        parsed.append(entry)
    assert parsed, f"{process.name} wrote nothing"
    return parsed


def test_every_process_logs_json_and_a_run_names_its_job(fresh_database_url, redis_url, tmp_path):
    image, repository = tmp_path / "sda1.img", tmp_path / "repository"
    image.write_bytes(os.urandom(1024 * 1024))
    env = service_env(
        fresh_database_url, tmp_path, redis_url, ZDM_LOG_FORMAT="json", ZDM_PASSWORD="s3cret-pass",
        ZDM_AGENT_CENTER="CENTER-001", ZDM_AGENT_SERVER=SERVER,
        ZDM_AGENT_PARTITIONS=f"/dev/sda1={image}",
    )  # fmt: skip
    assert flask_cli(env, "zdm", "init").returncode == 0
    assert (
        flask_cli(env, "zdm", "create-user", "admin@example.com", "--role", "admin").returncode == 0
    )
    auth = {"Authorization": "Bearer " + flask_cli(env, "zdm", "create-token", "admin@example.com").stdout.strip()}  # fmt: skip
    logs = tmp_path / "logs"
    logs.mkdir()
    port = free_port()
    processes = {
        "web": Process("web", procfile_web(port), env, logs),
        "agent": Process("agent", celery("worker", "-Q", f"zdm.server.{SERVER}", "-n", "agent@%h",
                                         "-c", "1", "--without-mingle", "--without-gossip",
                                         "-l", "INFO"), env, logs),
        "control": Process("control", celery("worker", "-Q", "zdm.control", "-n", "control@%h",
                                             "-c", "1", "--without-mingle", "--without-gossip",
                                             "-l", "INFO"), env, logs),
        "beat": Process("beat", celery("beat", "-S", "workers.beat.scheduler:ZdmScheduler",
                                       "-l", "INFO", f"--pidfile={tmp_path / 'beat.pid'}",
                                       f"--schedule={tmp_path / 'beat.db'}"), env, logs),
    }  # fmt: skip
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        wait_for_http(base + "/health", 30)

        def agent_registered():
            answer = requests.get(f"{base}/servers/{SERVER}", headers=auth, timeout=10)
            return answer.status_code == 200

        wait_until(agent_registered, 60, what="agent registration")
        assert (
            requests.post(
                f"{base}/repositories",
                headers=auth,
                timeout=10,
                json={"center": "CENTER-001", "type": "local", "path": str(repository)},
            ).status_code
            == 201
        )
        answer = requests.post(f"{base}/backups", headers=auth, timeout=10, json={
            "center": "CENTER-001", "server": SERVER, "type": "full", "partition": ["/dev/sda1"],
            "repository": {"id": 1, "type": "local", "path": str(repository)},
            "jobName": "json-job", "user": "admin@example.com",
            "schedule": {"type": "daily", "description": "0 3 * * *"}})  # fmt: skip
        assert answer.status_code == 201, answer.text
        job_id = answer.json()["data"]["results"][0]["id"]
        database = create_engine(fresh_database_url)
        with database.begin() as conn:  # due now: beat fires it within a second
            conn.execute(
                update(BackupJob)
                .where(BackupJob.id == job_id)
                .values(next_run_at=utcnow() - timedelta(seconds=1))
            )
        database.dispose()

        def finished_run():
            data = requests.get(f"{base}/backups/monitoring/job/{job_id}", headers=auth,
                                timeout=10).json()["data"]  # fmt: skip
            run = data["run"]
            return run if run and run["state"] not in ("queued", "running") else None

        run = wait_until(finished_run, 60, interval=0.5, what="the fired run")
        assert run["state"] == "success", run
        run_id = run["id"]
        time.sleep(1)  # the last lines of the task
    finally:
        for process in processes.values():
            process.stop()

    lines = {name: json_lines(process) for name, process in processes.items()}

    assert any("Starting gunicorn" in e["message"] for e in lines["web"])
    assert any("GET /api/v1/health" in e["message"] for e in lines["web"])  # the access log
    fired = [e for e in lines["beat"] if e["message"].startswith(f"fired job {job_id} ")]
    assert [(e["job"], e["jobName"], e["run"]) for e in fired] == [(job_id, "json-job", run_id)]
    assert any("ready" in e["message"] for e in lines["control"])
    of_run = [e for e in lines["agent"] if e.get("run") == run_id]
    assert all((e["job"], e["jobName"]) == (job_id, "json-job") for e in of_run)
    messages = [e["message"] for e in of_run]
    assert "full backup of /dev/sda1 started" in messages
    assert "backup ended success" in messages
    assert any("succeeded" in m for m in messages)  # Celery's own line about the task
    runner = [e for e in lines["agent"] if e["logger"] == "workers.agent.runner"]
    assert runner and all(e.get("run") == run_id for e in runner)
