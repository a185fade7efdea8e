"""One shape per kind of answer, as the OpenAPI document says: registration (201, 207 and
409 alike carry `data{results, summary}`) and the job actions /start, /stop and /run (the
job as it is now, plus what the action did)."""

import pytest

from app.extensions import db
from tests.app.api.helpers import SEED_ADVANCED, TIMESTAMP, body
from tests.app.api.openapi_check import assert_documented
from tests.jobs import every_minute, later, runs_of
from workers.beat.scheduler import fire_due_jobs


@pytest.fixture
def spec(client):
    return client.get("/api/v1/openapi.json").get_json()


def test_registration_refused_for_every_partition_carries_data_like_207(
    client, auth, seed_inventory, spec
):
    client.post("/api/v1/backups", json=SEED_ADVANCED, headers=auth)

    refused = client.post("/api/v1/backups", json=SEED_ADVANCED, headers=auth)

    assert refused.status_code == 409
    payload = refused.get_json()
    assert payload["success"] is False and TIMESTAMP.match(payload["timestamp"])
    assert payload["error"] == payload["message"] == "백업 작업을 하나도 등록하지 못했습니다"
    assert payload["data"]["summary"] == {"total": 2, "successful": 0, "failed": 2}
    assert [(r["partition"], r["state"]) for r in payload["data"]["results"]] == [
        ("/dev/sda1", "fail"),
        ("/dev/sda2", "fail"),
    ]
    assert "detail" not in payload
    assert_documented(spec, "post", "/api/v1/backups", refused)


def test_every_registration_answer_has_the_same_data(client, auth, seed_inventory, spec):
    created = client.post("/api/v1/backups", json=SEED_ADVANCED, headers=auth)
    partial = client.post(
        "/api/v1/backups",
        json=body(SEED_ADVANCED, partition=["/dev/sda1", "/dev/sdz9"], jobName="other"),
        headers=auth,
    )
    refused = client.post("/api/v1/backups", json=SEED_ADVANCED, headers=auth)

    assert [r.status_code for r in (created, partial, refused)] == [201, 207, 409]
    for answer in (created, partial, refused):
        assert set(answer.get_json()["data"]) == {"results", "summary"}
        assert_documented(spec, "post", "/api/v1/backups", answer)


def test_start_answers_the_job_and_what_it_did(client, auth, register, spec):
    job = register(autoStart="no")

    response = client.post(f"/api/v1/backups/{job.id}/start", headers=auth)

    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["backup"]["job"]["info"]["status"]["current"] == "scheduled"
    assert data["backup"]["job"]["info"]["schedule"]["nextRunAt"] is not None
    assert (data["canceledRuns"], data["runId"], data["run"]) == ([], None, None)
    assert_documented(spec, "post", "/api/v1/backups/{ref}/start", response)


def test_stop_of_a_running_job_no_longer_shows_it_running(client, auth, register, spec):
    job = register(**every_minute())
    run = fire_due_jobs(later(job))[0]
    run.state = "running"
    job.status = "running"
    db.session.commit()

    response = client.post(f"/api/v1/backups/{job.id}/stop", headers=auth)

    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["canceledRuns"] == [run.id]
    assert data["backup"]["job"]["info"]["status"]["current"] == "waiting"
    shown = client.get(f"/api/v1/backups/{job.id}", headers=auth).get_json()["data"]
    assert shown["job"]["info"]["status"]["current"] == "waiting"
    assert runs_of(job.id)[0].state == "canceling"  # the agent stops at its next safe point
    assert_documented(spec, "post", "/api/v1/backups/{ref}/stop", response)


def test_run_now_answers_the_job_and_the_queued_run(client, auth, register, spec):
    job = register(**every_minute())

    response = client.post(f"/api/v1/backups/{job.id}/run", headers=auth)

    assert response.status_code == 202
    data = response.get_json()["data"]
    assert data["runId"] == data["run"]["id"] == runs_of(job.id)[0].id
    assert data["run"]["state"] == "queued" and data["run"]["trigger"] == "manual"
    assert data["backup"]["job"]["info"]["id"] == job.id and data["canceledRuns"] == []
    assert_documented(spec, "post", "/api/v1/backups/{ref}/run", response)


def test_start_stop_and_run_document_one_schema(spec):
    schemas = {
        spec["paths"][f"/api/v1/backups/{{ref}}/{action}"]["post"]["responses"][status]["content"][
            "application/json"
        ]["schema"]["$ref"]
        for action, status in (("start", "200"), ("stop", "200"), ("run", "202"))
    }

    assert schemas == {"#/components/schemas/JobActionEnvelope"}


# ---- monitoring --------------------------------------------------------------------------


def test_monitoring_shows_the_last_run_with_its_outcome_once_finished(client, auth, register, spec):
    job = register(**every_minute())
    run = fire_due_jobs(later(job))[0]
    run.state, run.bytes_written, run.percent = "running", 512, 50.0
    db.session.commit()
    live = client.get(f"/api/v1/backups/monitoring/job/{job.id}", headers=auth)
    run.state, run.error_message, run.percent = "failed", "disk full", 50.0
    run.finished_at = run.scheduled_for
    db.session.commit()

    finished = client.get(f"/api/v1/backups/monitoring/job/{job.id}", headers=auth)

    assert live.get_json()["data"]["inProgress"] is True
    data = finished.get_json()["data"]
    assert data["inProgress"] is False
    assert data["run"]["id"] == run.id
    assert (data["run"]["state"], data["run"]["errorMessage"]) == ("failed", "disk full")
    assert data["run"]["finishedAt"] is not None and data["run"]["bytesWritten"] == 512
    for response in (live, finished):
        assert_documented(spec, "get", "/api/v1/backups/monitoring/job/{ref}", response)


def test_monitoring_of_a_job_that_never_ran(client, auth, register, spec):
    job = register(**every_minute())

    response = client.get(f"/api/v1/backups/monitoring/job/{job.id}", headers=auth)

    assert response.get_json()["data"]["run"] is None
    assert response.get_json()["data"]["inProgress"] is False
    assert_documented(spec, "get", "/api/v1/backups/monitoring/job/{ref}", response)
