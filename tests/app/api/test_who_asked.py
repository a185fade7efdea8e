"""Jobs record who registered them (`createdBy`), manual runs and restores who asked for
them (`requestedBy`), shown in their views and in the OpenAPI document."""

from datetime import timedelta

import pytest

from app.extensions import db
from app.models import BackupJob, RecoveryPoint
from tests.app.api.helpers import SEED_BASIC, body
from tests.conftest import bearer, make_user
from workers.beat.scheduler import fire_due_jobs

pytestmark = pytest.mark.usefixtures("seed_inventory")


@pytest.fixture
def operator(app):
    user = make_user("ops@example.com", role="operator")
    return {"id": user.id, "headers": bearer(user)}


def test_a_job_records_the_caller_not_the_user_field(client, operator):
    response = client.post("/api/v1/backups", json=SEED_BASIC, headers=operator["headers"])
    job_id = response.get_json()["data"]["results"][0]["id"]

    job = client.get(f"/api/v1/backups/{job_id}", headers=operator["headers"]).get_json()["data"]

    assert job["createdBy"] == {"id": operator["id"], "email": "ops@example.com"}
    assert job["options"]["user"] == {"id": 1, "name": "admin@example.com"}  # the seed's `user`
    assert db.session.get(BackupJob, job_id).created_by_id == operator["id"]


def test_a_manual_run_records_who_ran_it(client, operator, broker):
    client.post("/api/v1/backups", json=SEED_BASIC, headers=operator["headers"])

    started = client.post("/api/v1/backups/1/run", headers=operator["headers"]).get_json()["data"]

    who = {"id": operator["id"], "email": "ops@example.com"}
    assert started["run"]["requestedBy"] == who
    run = client.get(f"/api/v1/runs/{started['runId']}", headers=operator["headers"])
    assert run.get_json()["data"]["requestedBy"] == who


def test_a_scheduled_run_was_asked_for_by_nobody(client, auth, broker):
    every_minute = {"type": "custom", "description": "* * * * *"}
    client.post("/api/v1/backups", json=body(schedule=every_minute), headers=auth)
    job = db.session.get(BackupJob, 1)

    run = fire_due_jobs(job.next_run_at + timedelta(seconds=1))[0]

    shown = client.get(f"/api/v1/runs/{run.id}", headers=auth).get_json()["data"]
    assert (shown["trigger"], shown["requestedBy"]) == ("schedule", None)


def test_a_restore_records_who_asked(client, auth, operator, broker):
    client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)
    point = RecoveryPoint(engine_id="20260101T000000Z-0a0b0c", job_id=1, repository_id=1,
                          server_id=1, partition_name="/dev/sda1", partition_kind="block",
                          engine_job="job-x", mode="full")  # fmt: skip
    db.session.add(point)
    db.session.commit()

    response = client.post(
        "/api/v1/restores",
        json={"recoveryPoint": point.id, "server": "web-server-01",
              "target": "/var/lib/zdm/restores/sda1.img"},
        headers=operator["headers"],
    )  # fmt: skip

    who = {"id": operator["id"], "email": "ops@example.com"}
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json()["data"]["requestedBy"] == who
    restore_id = response.get_json()["data"]["id"]
    shown = client.get(f"/api/v1/restores/{restore_id}", headers=auth).get_json()["data"]
    assert shown["requestedBy"] == who


def test_the_openapi_document_shows_who_and_deleted(client):
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]

    assert set(schemas["UserRef"]["properties"]) == {"id", "email"}
    for schema, field in (("BackupJob", "createdBy"), ("Run", "requestedBy"),
                          ("Restore", "requestedBy")):  # fmt: skip
        user_or_null = schemas[schema]["properties"][field]["anyOf"]
        assert user_or_null[0]["$ref"].endswith("/UserRef") and user_or_null[1]["nullable"]
    job_ref = schemas["Run"]["properties"]["job"]["$ref"].rsplit("/", 1)[-1]
    assert set(schemas[job_ref]["properties"]) == {"id", "name", "deleted"}


def test_the_openapi_document_shows_the_recovery_point_list(client):
    spec = client.get("/api/v1/openapi.json").get_json()

    get = spec["paths"]["/api/v1/recovery-points"]["get"]
    assert {p["name"] for p in get["parameters"]} >= {"job", "server", "repository", "page"}
    assert {"200", "401", "422"} <= set(get["responses"])
