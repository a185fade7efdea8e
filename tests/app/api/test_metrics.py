"""GET /api/v1/metrics: Prometheus metrics from the database, behind a token."""

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.extensions import db
from app.models import BackupJob, Run, Server
from app.timeutil import utcnow
from tests.app.api.helpers import body
from tests.conftest import bearer, make_user

pytestmark = pytest.mark.usefixtures("seed_inventory")


def samples(response) -> dict:
    """{(sample name, frozenset of labels): value} of a scrape."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict, name: str, **labels) -> float:
    return found[(name, frozenset(labels.items()))]


def register(client, auth, name, partition="/dev/sda1", **changes) -> BackupJob:
    response = client.post(
        "/api/v1/backups", json=body(jobName=name, partition=[partition], **changes), headers=auth
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return db.session.get(BackupJob, response.get_json()["data"]["results"][0]["id"])


def add_run(job, state, seconds=None, written=0, finished_ago=timedelta(minutes=1)) -> Run:
    finished = utcnow() - finished_ago
    started = finished - timedelta(seconds=seconds) if seconds is not None else None
    run = Run(job_id=job.id, trigger="manual", scheduled_for=started or finished, state=state,
              started_at=started, bytes_written=written,
              finished_at=finished if state not in ("queued", "running") else None)  # fmt: skip
    db.session.add(run)
    db.session.commit()
    return run


def test_metrics_need_a_token(client):
    response = client.get("/api/v1/metrics")

    assert response.status_code == 401
    assert response.get_json()["success"] is False


def test_a_viewer_token_reads_the_metrics(client):
    viewer = bearer(make_user("viewer@example.com", role="viewer"))

    assert client.get("/api/v1/metrics", headers=viewer).status_code == 200


def test_the_metrics_token_reads_the_metrics_and_nothing_else(app, client):
    app.config["ZDM_METRICS_TOKEN"] = "prometheus-secret-0123456789"
    try:
        token = {"Authorization": "Bearer prometheus-secret-0123456789"}
        wrong = {"Authorization": "Bearer prometheus-secret-0123456780"}
        assert client.get("/api/v1/metrics", headers=token).status_code == 200
        assert client.get("/api/v1/metrics", headers=wrong).status_code == 401
        assert client.get("/api/v1/backups", headers=token).status_code == 401
    finally:
        app.config["ZDM_METRICS_TOKEN"] = ""


def test_jobs_runs_durations_bytes_and_agents(client, auth, seed_inventory):
    daily = register(client, auth, "daily")
    stopped = register(client, auth, "stopped", "/dev/sda2", autoStart="no")
    running = register(client, auth, "running", "/data")
    running.status = "running"
    add_run(daily, "success", seconds=20, written=1000)
    add_run(daily, "success", seconds=400, written=3000)
    add_run(stopped, "failed", seconds=5, written=24)
    add_run(stopped, "missed")
    add_run(running, "running", seconds=1)
    seed_inventory["server"].online, seed_inventory["server"].last_seen = True, utcnow()
    db.session.add(Server(name="silent", center=seed_inventory["center"], online=True,
                          last_seen=utcnow() - timedelta(hours=1)))  # fmt: skip
    db.session.commit()

    found = samples(client.get("/api/v1/metrics", headers=auth))

    assert value(found, "zdm_jobs", status="scheduled") == 1
    assert value(found, "zdm_jobs", status="waiting") == 1
    assert value(found, "zdm_jobs", status="running") == 1
    assert value(found, "zdm_jobs", status="completed") == 0
    assert value(found, "zdm_runs", state="success") == 2
    assert value(found, "zdm_runs", state="failed") == 1
    assert value(found, "zdm_runs", state="missed") == 1
    assert value(found, "zdm_runs", state="running") == 1
    assert value(found, "zdm_run_duration_seconds_count", state="success") == 2
    assert value(found, "zdm_run_duration_seconds_sum", state="success") == pytest.approx(
        420, abs=0.01
    )
    assert value(found, "zdm_run_duration_seconds_bucket", state="success", le="30.0") == 1
    assert value(found, "zdm_run_duration_seconds_bucket", state="success", le="900.0") == 2
    assert value(found, "zdm_run_duration_seconds_bucket", state="failed", le="10.0") == 1
    assert value(found, "zdm_run_bytes_written_total") == 4024
    assert value(found, "zdm_agents_online") == 1
    assert value(found, "zdm_servers") == 2
    last = value(found, "zdm_job_last_success_timestamp_seconds", job_id=str(daily.id),
                 job="daily", server="web-server-01")  # fmt: skip
    assert abs(last - (utcnow() - timedelta(minutes=1)).timestamp()) < 5 * 60


def test_late_jobs_are_counted_and_named(client, auth):
    late = register(client, auth, "late")
    fine = register(client, auth, "fine", "/dev/sda2")
    register(client, auth, "idle", "/data", autoStart="no")
    for job in (late, fine):
        job.created_at = utcnow() - timedelta(days=20)
    db.session.commit()
    add_run(late, "success", seconds=10, finished_ago=timedelta(days=3))
    add_run(fine, "success", seconds=10, finished_ago=timedelta(hours=3))

    found = samples(client.get("/api/v1/metrics", headers=auth))

    assert value(found, "zdm_jobs_health", health="late") == 1
    assert value(found, "zdm_jobs_health", health="ok") == 1
    assert value(found, "zdm_jobs_health", health="inactive") == 1
    assert (
        value(found, "zdm_job_late", job_id=str(late.id), job="late", server="web-server-01") == 1
    )
    assert [k for k in found if k[0] == "zdm_job_late"] == [
        ("zdm_job_late", frozenset({"job_id": str(late.id), "job": "late",
                                    "server": "web-server-01"}.items()))
    ]  # fmt: skip
    listed = client.get("/api/v1/backups?health=late", headers=auth).get_json()["data"]["items"]
    assert [i["job"]["info"]["id"] for i in listed] == [late.id]


def test_per_job_series_are_bounded(app, client, auth):
    for index, partition in enumerate(["/dev/sda1", "/dev/sda2", "/data"]):
        job = register(client, auth, f"job-{index}", partition)
        add_run(job, "success", seconds=1)
    app.config["ZDM_METRICS_JOB_SERIES"] = 2
    try:
        found = samples(client.get("/api/v1/metrics", headers=auth))
    finally:
        app.config["ZDM_METRICS_JOB_SERIES"] = 1000

    assert not [k for k in found if k[0] == "zdm_job_last_success_timestamp_seconds"]
    assert value(found, "zdm_job_series_truncated") == 1
    assert value(found, "zdm_jobs", status="scheduled") == 3


def test_metrics_are_in_the_openapi_document_and_the_index(client):
    spec = client.get("/api/v1/openapi.json").get_json()

    answer = spec["paths"]["/api/v1/metrics"]["get"]["responses"]
    assert "text/plain" in answer["200"]["content"] and "401" in answer
    assert client.get("/api/v1").get_json()["data"]["links"]["metrics"] == "/api/v1/metrics"
