"""GET /api/v1/backups (filters, pagination) and GET /api/v1/backups/{idOrName}."""

import pytest

from app.extensions import db
from app.models import Partition
from tests.app.api.helpers import SEED_ADVANCED, SEED_BASIC, assert_error, body

pytestmark = pytest.mark.usefixtures("seed_inventory")


@pytest.fixture
def jobs(client, auth):
    """daily-backup-web on sda1 (full, daily) and incremental-backup on sda1 and sda2."""
    client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)
    client.post("/api/v1/backups", json=SEED_ADVANCED, headers=auth)


def listing(client, auth, query=""):
    response = client.get(f"/api/v1/backups{query}", headers=auth)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["data"]


def test_item_shape(client, auth, jobs):
    item = listing(client, auth)["items"][0]

    assert item["system"] == {"id": 1, "name": "web-server-01"}
    assert item["repository"] == {"id": 1, "type": "local", "path": "/backup/storage"}
    info = item["job"]["info"]
    assert (info["id"], info["name"], info["mode"], info["partition"]) == (
        1,
        "daily-backup-web",
        "full",
        "/dev/sda1",
    )
    assert info["schedule"]["basic"] == "0 2 * * *"
    assert info["schedule"]["advanced"] == "daily at 2:00 AM"
    assert info["schedule"]["timezone"] == "UTC"
    assert info["schedule"]["nextRunAt"].endswith("T02:00:00.000Z")
    assert info["status"] == {
        "current": "scheduled",
        "health": "ok",
        "lastSuccessAt": None,
        "time": {"start": None, "elapsed": None, "end": None},
    }
    assert item["job"]["lastUpdated"]
    assert item["options"]["rotation"] == 7


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("", [1, 2, 3]),
        ("?jobName=incremental-backup", [2, 3]),
        ("?mode=full", [1]),
        ("?partition=/dev/sda2", [3]),
        ("?server=web-server-01&center=CENTER-001", [1, 2, 3]),
        ("?server=1", [1, 2, 3]),
        ("?center=CENTER-002", []),
        ("?status=scheduled", [1, 2, 3]),
        ("?status=waiting", []),
        ("?repositoryID=1", [1, 2, 3]),
        ("?repositoryID=2", []),
    ],
)
def test_filters(client, auth, jobs, query, ids):
    assert [i["job"]["info"]["id"] for i in listing(client, auth, query)["items"]] == ids


def test_bad_filter_value_is_422(client, auth):
    assert_error(
        client.get("/api/v1/backups?mode=differential", headers=auth), 422, paths=("mode",)
    )
    assert_error(client.get("/api/v1/backups?sever=web", headers=auth), 422, paths=("sever",))


def test_pagination(client, auth, jobs):
    data = listing(client, auth, "?limit=2&page=2")

    assert [i["job"]["info"]["id"] for i in data["items"]] == [3]
    assert data["pagination"]["totalItems"] == 3 and data["pagination"]["totalPages"] == 2


def test_get_by_id_and_by_unique_name(client, auth, jobs):
    by_id = client.get("/api/v1/backups/1", headers=auth).get_json()["data"]
    by_name = client.get("/api/v1/backups/daily-backup-web", headers=auth).get_json()["data"]

    assert by_id == by_name and by_id["job"]["info"]["id"] == 1


def test_ambiguous_name_is_409_and_unknown_is_404(client, auth, jobs):
    payload = assert_error(client.get("/api/v1/backups/incremental-backup", headers=auth), 409)
    assert "2" in payload["error"]

    assert_error(client.get("/api/v1/backups/nope", headers=auth), 404)
    assert_error(client.get("/api/v1/backups/999", headers=auth), 404)


def test_viewer_can_read(client):
    from tests.conftest import bearer, make_user

    viewer = bearer(make_user("viewer@example.com", role="viewer"))

    assert client.get("/api/v1/backups", headers=viewer).status_code == 200


def test_directory_job_shows_exclude_dirs(client, auth, seed_inventory):
    assert db.session.query(Partition).filter_by(name="/data").one().kind == "directory"
    client.post(
        "/api/v1/backups", json=body(partition=["/data"], excludeDir=["/data/cache"]), headers=auth
    )

    item = listing(client, auth)["items"][0]

    assert item["options"]["excludeDir"] == ["/data/cache"]
