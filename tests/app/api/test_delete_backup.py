"""DELETE /api/v1/backups/{id}: the job leaves /backups, its past stays."""

import pytest

from app.extensions import db
from app.models import BackupJob, RecoveryPoint, Run
from tests.app.api.helpers import SEED_ADVANCED, SEED_BASIC, assert_error, body, job_count

pytestmark = pytest.mark.usefixtures("seed_inventory")


def test_delete_job_returns_it_and_it_leaves_backups(client, auth):
    client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)

    response = client.delete("/api/v1/backups/1", headers=auth)

    assert response.status_code == 200
    assert response.get_json()["data"]["job"]["info"]["name"] == "daily-backup-web"
    assert_error(client.get("/api/v1/backups/1", headers=auth), 404)
    assert_error(client.get("/api/v1/backups/daily-backup-web", headers=auth), 404)
    assert client.get("/api/v1/backups", headers=auth).get_json()["data"]["items"] == []
    for query in ("?jobName=daily-backup-web", "?partition=/dev/sda1", "?repositoryID=1"):
        listed = client.get(f"/api/v1/backups{query}", headers=auth).get_json()["data"]
        assert listed["items"] == [] and listed["pagination"]["totalItems"] == 0
    assert_error(client.delete("/api/v1/backups/1", headers=auth), 404)


def test_deleted_job_keeps_its_row_stopped(client, auth):
    client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)

    client.delete("/api/v1/backups/1", headers=auth)

    db.session.expire_all()
    job = db.session.get(BackupJob, 1)
    assert job.deleted_at is not None
    assert (job.active, job.next_run_at, job.status) == (False, None, "waiting")
    assert job_count() == 1


def test_deleted_job_name_can_be_registered_again_under_a_new_id(client, auth):
    client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)
    client.delete("/api/v1/backups/daily-backup-web?purge=false", headers=auth)

    response = client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)

    assert response.status_code == 201
    assert response.get_json()["data"]["results"][0]["id"] == 2
    # the name now means the new job alone: not ambiguous with the deleted one
    found = client.get("/api/v1/backups/daily-backup-web", headers=auth).get_json()["data"]
    assert found["job"]["info"]["id"] == 2


def test_a_name_shared_with_a_deleted_job_on_another_partition_is_not_ambiguous(client, auth):
    client.post("/api/v1/backups", json=SEED_ADVANCED, headers=auth)  # jobs 1 and 2, one name

    client.delete("/api/v1/backups/1", headers=auth)

    found = client.get("/api/v1/backups/incremental-backup", headers=auth).get_json()["data"]
    assert found["job"]["info"]["id"] == 2


def test_registering_beside_a_deleted_job_reports_only_live_duplicates(client, auth):
    client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)
    client.delete("/api/v1/backups/1", headers=auth)
    client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)

    response = client.post(
        "/api/v1/backups", json=body(partition=["/dev/sda1", "/dev/sda2"]), headers=auth
    )

    assert response.status_code == 207
    results = response.get_json()["data"]["results"]
    assert [(r["partition"], r["state"]) for r in results] == [
        ("/dev/sda1", "fail"),
        ("/dev/sda2", "success"),
    ]
    # The refused insert may have used up an id on PostgreSQL (ids are never reused, but
    # may have gaps): the new job is the one listed on /dev/sda2, whatever its number.
    listed = client.get("/api/v1/backups?partition=/dev/sda2", headers=auth).get_json()
    assert [i["job"]["info"]["id"] for i in listed["data"]["items"]] == [results[1]["id"]]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", "/api/v1/backups/1"),
        ("post", "/api/v1/backups/1/start"),
        ("post", "/api/v1/backups/1/stop"),
        ("post", "/api/v1/backups/1/run"),
        ("get", "/api/v1/backups/1/runs"),
        ("get", "/api/v1/backups/1/recovery-points"),
        ("get", "/api/v1/backups/monitoring/job/1"),
    ],
)
def test_a_deleted_job_cannot_be_changed_started_or_run(client, auth, method, path):
    client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)
    client.delete("/api/v1/backups/1", headers=auth)

    kwargs = {"json": {"rotation": 3}} if method == "put" else {}
    payload = assert_error(getattr(client, method)(path, headers=auth, **kwargs), 404)

    assert "1" in payload["error"]
    db.session.expire_all()
    assert db.session.get(BackupJob, 1).active is False


def test_runs_of_a_deleted_job_stay_in_the_history(client, auth, broker):
    client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)
    run_id = client.post("/api/v1/backups/1/run", headers=auth).get_json()["data"]["runId"]
    live = client.get(f"/api/v1/runs/{run_id}", headers=auth).get_json()["data"]
    assert live["job"] == {"id": 1, "name": "daily-backup-web", "deleted": False}

    client.delete("/api/v1/backups/1", headers=auth)

    run = client.get(f"/api/v1/runs/{run_id}", headers=auth).get_json()["data"]
    assert run["job"] == {"id": 1, "name": "daily-backup-web", "deleted": True}
    assert (run["state"], run["errorMessage"]) == ("canceled", "canceled by stop")
    for query in ("", "?jobID=1", "?jobName=daily-backup-web", "?state=canceled"):
        history = client.get(f"/api/v1/backups/histories{query}", headers=auth).get_json()["data"]
        assert [(r["id"], r["job"]["deleted"]) for r in history["items"]] == [(run_id, True)]


def test_delete_without_purge_keeps_points_with_their_job(client, auth, broker):
    client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)
    point = RecoveryPoint(engine_id="20260101T000000Z-0a0b0c", job_id=1, repository_id=1,
                          server_id=1, partition_name="/dev/sda1", partition_kind="block",
                          engine_job="job-x", mode="full")  # fmt: skip
    db.session.add(point)
    db.session.commit()

    client.delete("/api/v1/backups/1", headers=auth)

    db.session.expire_all()
    assert db.session.get(RecoveryPoint, point.id).job_id == 1
    assert broker.llen("zdm.server.web-server-01") == 0  # nothing asked of the agent


def test_bad_purge_value_is_422(client, auth):
    client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)

    assert_error(
        client.delete("/api/v1/backups/1?purge=maybe", headers=auth), 422, paths=("purge",)
    )
    db.session.expire_all()
    assert db.session.get(BackupJob, 1).deleted_at is None


def test_a_server_whose_jobs_are_all_deleted_can_be_deleted(client, auth, broker):
    client.post("/api/v1/backups", json=SEED_ADVANCED, headers=auth)  # jobs 1 and 2
    client.post("/api/v1/backups/1/run", headers=auth)
    client.delete("/api/v1/backups/1", headers=auth)

    english = {**auth, "Accept-Language": "en"}
    payload = assert_error(client.delete("/api/v1/servers/web-server-01", headers=english), 409)
    assert payload["error"] == "Server 'web-server-01' still has 1 backup jobs; delete them first."
    client.delete("/api/v1/backups/2", headers=auth)
    response = client.delete("/api/v1/servers/web-server-01", headers=auth)

    assert response.status_code == 200, response.get_data(as_text=True)
    # the deleted jobs' rows and runs went with the server they were about
    assert job_count() == 0 and db.session.query(Run).count() == 0
