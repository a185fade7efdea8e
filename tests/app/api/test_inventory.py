"""Centers, servers with partitions, and repositories."""

import pytest

from app.extensions import db
from app.models import BackupJob, RecoveryPoint, Repository, Restore, Run
from app.timeutil import utcnow
from tests.app.api.helpers import SEED_BASIC, assert_error


def create(client, auth, resource, data):
    return client.post(f"/api/v1/{resource}", json=data, headers=auth)


@pytest.fixture
def center(client, auth):
    return create(
        client, auth, "centers", {"name": "CENTER-001", "description": "Seoul"}
    ).get_json()["data"]


SERVER = {
    "name": "web-server-01",
    "center": "CENTER-001",
    "partitions": [
        {"name": "/dev/sda1", "kind": "block", "size": 536870912},
        {"name": "/data", "kind": "directory", "mountpoint": "/data/"},
    ],
}


def test_center_created_and_found_by_id_and_name(client, auth, center):
    assert center == {"id": 1, "name": "CENTER-001", "description": "Seoul"}
    assert client.get("/api/v1/centers/1", headers=auth).get_json()["data"] == center
    assert client.get("/api/v1/centers/CENTER-001", headers=auth).get_json()["data"] == center
    assert_error(client.get("/api/v1/centers/CENTER-404", headers=auth), 404)


def test_duplicate_center_is_409(client, auth, center):
    assert_error(create(client, auth, "centers", {"name": "CENTER-001"}), 409)


def test_server_with_partitions(client, auth, center):
    response = create(client, auth, "servers", SERVER)

    assert response.status_code == 201
    server = response.get_json()["data"]
    assert server["center"] == {"id": 1, "name": "CENTER-001"}
    assert server["online"] is False and server["lastSeen"] is None
    assert server["agent"] is None  # no agent has reported
    assert server["partitions"] == [
        {"name": "/dev/sda1", "mountpoint": None, "kind": "block", "size": 536870912},
        {"name": "/data", "mountpoint": "/data", "kind": "directory", "size": None},
    ]
    partitions = client.get("/api/v1/servers/web-server-01/partitions", headers=auth).get_json()
    assert [p["name"] for p in partitions["data"]["partitions"]] == ["/dev/sda1", "/data"]


def test_server_validation(client, auth, center):
    bad = {"name": "", "center": "CENTER-001", "partitions": [{"name": "/x", "kind": "tape"}]}

    assert_error(create(client, auth, "servers", bad), 422, paths=("name", "partitions.0.kind"))


def test_server_of_unknown_center_is_404(client, auth):
    assert_error(create(client, auth, "servers", SERVER), 404)


def test_servers_list_paginates(client, auth, center):
    for n in range(3):
        create(client, auth, "servers", {"name": f"srv-{n}", "center": "CENTER-001"})

    page = client.get("/api/v1/servers?page=2&limit=2", headers=auth).get_json()["data"]

    assert [s["name"] for s in page["items"]] == ["srv-2"]
    assert page["pagination"] == {
        "currentPage": 2,
        "totalPages": 2,
        "totalItems": 3,
        "itemsPerPage": 2,
        "hasNextPage": False,
        "hasPreviousPage": True,
    }


def test_delete_server(client, auth, center):
    create(client, auth, "servers", SERVER)

    assert client.delete("/api/v1/servers/web-server-01", headers=auth).status_code == 200

    assert_error(client.get("/api/v1/servers/web-server-01", headers=auth), 404)


def test_server_with_jobs_cannot_be_deleted(client, auth, seed_inventory):
    client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)

    payload = assert_error(client.delete("/api/v1/servers/web-server-01", headers=auth), 409)

    assert "web-server-01" in payload["error"]


def test_repository_path_is_normalised(client, auth, center):
    data = {"center": "CENTER-001", "type": "local", "path": "/backup//storage/./"}

    repository = create(client, auth, "repositories", data).get_json()["data"]

    assert repository == {
        "id": 1,
        "center": {"id": 1, "name": "CENTER-001"},
        "type": "local",
        "path": "/backup/storage",
        "verifySchedule": None,
        "verifyReadData": 0,
        "verifyNextAt": None,
        "lastVerifiedAt": None,
    }


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"type": "local", "path": "backup"}, "path"),
        ({"type": "local", "path": "/backup/../etc"}, "path"),
        ({"type": "s3", "path": "/backup"}, "type"),
        ({"type": "local"}, "path"),
    ],
)
def test_repository_validation(client, auth, center, data, path):
    assert_error(
        create(client, auth, "repositories", {"center": "CENTER-001", **data}), 422, paths=(path,)
    )
    assert db.session.query(Repository).count() == 0


def test_repository_roots_allow_list(client, auth, center, app):
    app.config["ZDM_REPOSITORY_ROOTS"] = ["/backup", "/mnt/nfs"]
    try:
        outside = {"center": "CENTER-001", "type": "local", "path": "/backupX/storage"}
        inside = {"center": "CENTER-001", "type": "local", "path": "/mnt/nfs/zdm"}

        assert_error(create(client, auth, "repositories", outside), 422, paths=("path",))
        assert create(client, auth, "repositories", inside).status_code == 201
    finally:
        app.config["ZDM_REPOSITORY_ROOTS"] = []


def test_duplicate_repository_path_in_a_center_is_409(client, auth, center):
    data = {"center": "CENTER-001", "type": "local", "path": "/backup/storage"}
    create(client, auth, "repositories", data)

    assert_error(create(client, auth, "repositories", data), 409)


def test_repository_in_use_cannot_be_deleted_until_its_jobs_are(client, auth, seed_inventory):
    job_id = client.post("/api/v1/backups", json=SEED_BASIC, headers=auth).get_json()["data"][
        "results"
    ][0]["id"]

    assert_error(client.delete("/api/v1/repositories/1", headers=auth), 409)
    client.delete(f"/api/v1/backups/{job_id}", headers=auth)

    assert client.delete("/api/v1/repositories/1", headers=auth).status_code == 200
    assert_error(client.get("/api/v1/repositories/1", headers=auth), 404)


def test_partition_sizes_beyond_the_bigint_column_are_422(client, auth, center):
    too_big = {**SERVER, "partitions": [{"name": "/dev/sdb", "kind": "block", "size": 2**63}]}
    largest = {**SERVER, "partitions": [{"name": "/dev/sdb", "kind": "block", "size": 2**63 - 1}]}

    assert_error(create(client, auth, "servers", too_big), 422, paths=("partitions.0.size",))
    response = create(client, auth, "servers", largest)
    assert response.status_code == 201
    assert response.get_json()["data"]["partitions"][0]["size"] == 2**63 - 1


def _register_job(client, auth) -> int:
    response = client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)
    return response.get_json()["data"]["results"][0]["id"]


def _recovery_point(job_id: int, inventory) -> RecoveryPoint:
    point = RecoveryPoint(
        engine_id="p-0001",
        job_id=job_id,
        repository=inventory["repository"],
        server_id=inventory["server"].id,
        partition_name="/dev/sda1",
        partition_kind="block",
        engine_job=db.session.get(BackupJob, job_id).engine_job,
        mode="full",
    )
    db.session.add(point)
    db.session.commit()
    return point


def test_server_with_recovery_points_cannot_be_deleted(client, auth, seed_inventory):
    job_id = _register_job(client, auth)
    _recovery_point(job_id, seed_inventory)
    assert client.delete(f"/api/v1/backups/{job_id}", headers=auth).status_code == 200

    response = client.delete("/api/v1/servers/web-server-01", headers=auth)

    payload = assert_error(response, 409)
    assert payload["error"] == "서버 'web-server-01'의 복구 지점 1개가 남아 있어 삭제할 수 없습니다"
    assert client.get("/api/v1/servers/web-server-01", headers=auth).status_code == 200


def test_server_whose_only_jobs_are_deleted_but_whose_points_remain_is_409(
    client, auth, seed_inventory
):
    job_id = _register_job(client, auth)
    _recovery_point(job_id, seed_inventory)
    db.session.get(BackupJob, job_id).deleted_at = utcnow()  # deleted, its points kept
    db.session.commit()

    response = client.delete(
        "/api/v1/servers/web-server-01", headers={**auth, "Accept-Language": "en"}
    )

    payload = assert_error(response, 409)
    assert (
        payload["error"]
        == "Server 'web-server-01' still has 1 recovery points and cannot be deleted."
    )


def test_server_with_restores_cannot_be_deleted(client, auth, seed_inventory):
    db.session.add(Restore(server=seed_inventory["server"], target="/tmp/r.img", state="success"))
    db.session.commit()

    payload = assert_error(client.delete("/api/v1/servers/web-server-01", headers=auth), 409)

    assert payload["error"] == "서버 'web-server-01'에 복구 기록 1개가 있어 삭제할 수 없습니다"


def test_repository_with_recovery_points_cannot_be_deleted(client, auth, seed_inventory):
    job_id = _register_job(client, auth)
    _recovery_point(job_id, seed_inventory)
    client.delete(f"/api/v1/backups/{job_id}", headers=auth)

    payload = assert_error(client.delete("/api/v1/repositories/1", headers=auth), 409)

    assert payload["error"] == "리포지토리 1에 복구 지점 1개가 남아 있어 삭제할 수 없습니다"
    assert client.get("/api/v1/repositories/1", headers=auth).status_code == 200


def test_server_and_repository_whose_jobs_are_all_deleted_can_be_deleted(
    client, auth, seed_inventory
):
    job_id = _register_job(client, auth)
    job = db.session.get(BackupJob, job_id)
    db.session.add(Run(job=job, trigger="manual", scheduled_for=utcnow(), state="success"))
    job.deleted_at = utcnow()  # deleted without points left: nothing refers to the server
    db.session.commit()

    assert client.delete("/api/v1/repositories/1", headers=auth).status_code == 200
    assert client.delete("/api/v1/servers/web-server-01", headers=auth).status_code == 200
    db.session.expire_all()
    assert db.session.query(BackupJob).count() == 0 and db.session.query(Run).count() == 0
