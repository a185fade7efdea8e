"""GET /api/v1/recovery-points: the points of live and deleted jobs, with filters."""

import pytest

from app.extensions import db
from app.models import Center, RecoveryPoint, Repository, Server
from tests.app.api.helpers import SEED_ADVANCED, assert_error
from tests.conftest import bearer, make_user

pytestmark = pytest.mark.usefixtures("seed_inventory")


def add_point(job_id, partition, *, repository_id=1, server_id=1, engine_job="job-x") -> int:
    point = RecoveryPoint(engine_id=f"20260101T00000{job_id or 0}Z-0a0b0c", job_id=job_id,
                          repository_id=repository_id, server_id=server_id,
                          partition_name=partition, partition_kind="block", engine_job=engine_job,
                          mode="full", source_size=100, stored_size=10, compression="gzip")  # fmt: skip
    db.session.add(point)
    db.session.commit()
    return point.id


@pytest.fixture
def points(client, auth):
    """Jobs 1 (/dev/sda1) and 2 (/dev/sda2), a point each; job 1 deleted without purge."""
    client.post("/api/v1/backups", json=SEED_ADVANCED, headers=auth)
    ids = [add_point(1, "/dev/sda1"), add_point(2, "/dev/sda2")]
    assert client.delete("/api/v1/backups/1", headers=auth).status_code == 200
    return ids


def listing(client, auth, query=""):
    response = client.get(f"/api/v1/recovery-points{query}", headers=auth)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["data"]


def test_a_deleted_jobs_points_are_listed_with_the_job(client, auth, points):
    data = listing(client, auth, "?job=1")

    assert data["items"] == [
        {"id": points[0], "runId": None, "mode": "full", "createdAt": data["items"][0]["createdAt"],
         "sourceSize": 100, "storedSize": 10, "compression": "gzip", "encrypted": False,
         "state": "available", "damaged": False,
         "partition": "/dev/sda1", "job": {"id": 1, "name": "incremental-backup", "deleted": True}}
    ]  # fmt: skip
    assert data["pagination"]["totalItems"] == 1
    assert_error(client.get("/api/v1/backups/1/recovery-points", headers=auth), 404)


def test_every_point_newest_first(client, auth, points):
    items = listing(client, auth)["items"]

    assert [(p["id"], p["job"]["id"], p["job"]["deleted"]) for p in items] == [
        (points[1], 2, False),
        (points[0], 1, True),
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?job=2", [1]),
        ("?job=999", []),
        ("?server=web-server-01", [1]),
        ("?server=1", [1]),
        ("?server=other-server", [0]),
        ("?repository=1", [0]),
        ("?repository=2", [1]),
        ("?job=1&repository=1", [0]),
        ("?job=2&repository=1", []),
    ],
)
def test_filters(client, auth, points, query, expected):
    """Point 0 (deleted job) is moved to another server, point 1 to another repository."""
    center = db.session.get(Center, 1)
    other = Server(name="other-server", center=center)
    repository = Repository(center=center, type="local", path="/backup/other")
    db.session.add_all([other, repository])
    db.session.commit()
    db.session.get(RecoveryPoint, points[0]).server_id = other.id
    db.session.get(RecoveryPoint, points[1]).repository_id = repository.id
    db.session.commit()

    items = listing(client, auth, query)["items"]

    assert [p["id"] for p in items] == [points[i] for i in expected]


def test_pagination(client, auth, points):
    data = listing(client, auth, "?limit=1&page=2")

    assert [p["id"] for p in data["items"]] == [points[0]]
    assert data["pagination"] == {
        "currentPage": 2,
        "totalPages": 2,
        "totalItems": 2,
        "itemsPerPage": 1,
        "hasNextPage": False,
        "hasPreviousPage": True,
    }


def test_a_point_whose_job_row_is_gone_shows_no_job(client, auth, points):
    """Points kept by a delete before jobs were kept (see the trust migration)."""
    orphan = add_point(None, "/dev/sda1", engine_job="job-7")

    items = listing(client, auth, "?repository=1")["items"]

    assert (items[0]["id"], items[0]["job"], items[0]["partition"]) == (orphan, None, "/dev/sda1")


def test_purged_points_are_gone(client, auth, points, broker):
    assert client.delete("/api/v1/backups/2?purge=true", headers=auth).status_code == 200

    assert listing(client, auth, "?job=2")["items"] == []
    assert [p["id"] for p in listing(client, auth)["items"]] == [points[0]]


def test_a_deleted_jobs_point_can_be_restored(client, auth, points, broker):
    response = client.post(
        "/api/v1/restores",
        json={"recoveryPoint": points[0], "server": "web-server-01",
              "target": "/var/lib/zdm/restores/sda1.img"},
        headers=auth,
    )  # fmt: skip

    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json()["data"]["recoveryPoint"] == points[0]


def test_a_viewer_may_list_and_no_token_may_not(client, points):
    viewer = bearer(make_user("viewer@example.com", role="viewer"))

    assert client.get("/api/v1/recovery-points", headers=viewer).status_code == 200
    assert_error(client.get("/api/v1/recovery-points"), 401)


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ("?job=abc", "job"),
        ("?job=0", "job"),
        ("?repository=99999999999", "repository"),
        ("?limit=201", "limit"),
        ("?jobs=1", "jobs"),
    ],
)
def test_bad_filters_are_422(client, auth, query, path):
    assert_error(client.get(f"/api/v1/recovery-points{query}", headers=auth), 422, paths=(path,))
