"""Metrics under gunicorn with several workers: every worker answers the same numbers,
because each scrape reads them from the database (nothing is counted in a process)."""

import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.end_to_end.processes import (
    BIN,
    ROOT,
    flask_cli,
    free_port,
    service_env,
    wait_for_http,
    wait_until,
)

METRICS_TOKEN = "prometheus-" + "0123456789abcdef" * 2


@pytest.fixture
def service(fresh_database_url, tmp_path, redis_url):
    env = service_env(fresh_database_url, tmp_path, redis_url, ZDM_PASSWORD="s3cret-pass",
                      ZDM_METRICS_TOKEN=METRICS_TOKEN)  # fmt: skip
    assert flask_cli(env, "zdm", "init").returncode == 0
    assert (
        flask_cli(env, "zdm", "create-user", "admin@example.com", "--role", "admin").returncode == 0
    )
    token = flask_cli(env, "zdm", "create-token", "admin@example.com").stdout.strip()
    port = free_port()
    access_log = tmp_path / "access.log"
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "3",
         "--access-logfile", str(access_log), "--access-logformat", "%(p)s %(U)s", "wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base + "/api/v1/health")
        yield base, {"Authorization": f"Bearer {token}"}, access_log
    finally:
        process.terminate()
        process.wait(timeout=20)


def scrape_many(base: str, count: int) -> list[str]:
    """`count` scrapes, six at a time on fresh connections, so several workers answer."""

    def scrape(_):
        response = requests.get(
            base + "/api/v1/metrics",
            headers={"Authorization": f"Bearer {METRICS_TOKEN}", "Connection": "close"},
            timeout=30,
        )
        assert response.status_code == 200
        return response.text

    with ThreadPoolExecutor(6) as pool:
        return list(pool.map(scrape, range(count)))


def test_every_worker_answers_the_same_metrics(service, fresh_database_url):
    base, auth, access_log = service
    for resource, data in [
        ("centers", {"name": "CENTER-001"}),
        ("servers", {"name": "web-server-01", "center": "CENTER-001",
                     "partitions": [{"name": "/dev/sda1", "kind": "block"}]}),
        ("repositories", {"center": "CENTER-001", "type": "local", "path": "/backup/storage"}),
    ]:  # fmt: skip
        assert requests.post(f"{base}/api/v1/{resource}", json=data, headers=auth, timeout=10).ok
    job = {"center": "CENTER-001", "server": "web-server-01", "type": "full",
           "partition": ["/dev/sda1"], "repository": {"id": 1, "type": "local",
           "path": "/backup/storage"}, "jobName": "daily", "user": "admin@example.com",
           "schedule": {"type": "daily", "description": "0 2 * * *"}}  # fmt: skip
    assert requests.post(f"{base}/api/v1/backups", json=job, headers=auth, timeout=10).ok

    before = scrape_many(base, 18)
    engine = create_engine(fresh_database_url)
    with engine.begin() as conn:  # a run recorded by another process (an agent, say)
        conn.execute(
            text("INSERT INTO runs (job_id, trigger, scheduled_for, state, queued_at, started_at,"
                 " finished_at, bytes_written, bytes_read, bytes_total, percent, speed, log)"
                 " VALUES (1, 'manual', :t, 'success', :t, :t, :t, 4096, 0, 0, 0, 0, '[]')"),
            {"t": datetime(2026, 1, 1, 2, 0)},
        )  # fmt: skip
    engine.dispose()
    after = scrape_many(base, 18)

    assert len(set(before)) == 1 and len(set(after)) == 1
    assert 'zdm_runs{state="success"} 0.0' in before[0]
    assert 'zdm_runs{state="success"} 1.0' in after[0]
    assert "zdm_run_bytes_written_total 4096.0" in after[0]
    assert (
        'zdm_job_last_success_timestamp_seconds{job="daily",job_id="1",server="web-server-01"}'
        in after[0]
    )

    def workers_that_answered():
        lines = access_log.read_text().splitlines()
        pids = {line.split()[0] for line in lines if line.endswith("/api/v1/metrics")}
        return pids if len(pids) >= 2 else None

    assert wait_until(workers_that_answered, 10, what="answers from two workers")
