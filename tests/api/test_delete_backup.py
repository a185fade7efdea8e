"""DELETE /api/v1/backups/{id}."""

import pytest

from tests.api.helpers import SEED_BASIC, assert_error, job_count

pytestmark = pytest.mark.usefixtures("seed_inventory")


def test_delete_job_returns_it_and_removes_it(client, auth):
    client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)

    response = client.delete("/api/v1/backups/1", headers=auth)

    assert response.status_code == 200
    assert response.get_json()["data"]["job"]["info"]["name"] == "daily-backup-web"
    assert job_count() == 0
    assert_error(client.delete("/api/v1/backups/1", headers=auth), 404)


def test_deleted_job_name_can_be_registered_again(client, auth):
    client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)
    client.delete("/api/v1/backups/daily-backup-web?purge=false", headers=auth)

    assert client.post("/api/v1/backups", json=SEED_BASIC, headers=auth).status_code == 201


def test_bad_purge_value_is_422(client, auth):
    client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)

    assert_error(
        client.delete("/api/v1/backups/1?purge=maybe", headers=auth), 422, paths=("purge",)
    )
    assert job_count() == 1
