"""PUT /api/v1/backups/{id}: what changed, and schedules re-planned without restarts."""

import pytest

from app.extensions import db
from app.models import BackupJob
from tests.app.api.helpers import SEED_BASIC, assert_error, body

pytestmark = pytest.mark.usefixtures("seed_inventory")


@pytest.fixture
def job_id(client, auth):
    response = client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)
    return response.get_json()["data"]["results"][0]["id"]


def put(client, auth, job_id, data):
    return client.put(f"/api/v1/backups/{job_id}", json=data, headers=auth)


def test_updated_fields_list_previous_and_new(client, auth, job_id):
    response = put(client, auth, job_id, {"rotation": 14, "compression": "lz4", "networkLimit": 0})

    assert response.status_code == 200
    updated = response.get_json()["data"]["updatedFields"]
    assert updated == [
        {"field": "rotation", "previous": 7, "new": 14},
        {"field": "compression", "previous": None, "new": "lz4"},
    ]
    job = db.session.get(BackupJob, job_id)
    assert (job.rotation, job.compression) == (14, "lz4")


def test_schedule_change_replans_next_run(client, auth, job_id):
    schedule = {"type": "daily", "description": "30 4 * * *", "timezone": "Asia/Seoul"}

    response = put(client, auth, job_id, {"schedule": schedule})

    data = response.get_json()["data"]
    assert data["updatedFields"][0]["field"] == "schedule"
    assert data["updatedFields"][0]["new"] == {
        "type": "daily",
        "description": "30 4 * * *",
        "timezone": "Asia/Seoul",
    }
    info = data["backup"]["job"]["info"]["schedule"]
    assert info["advanced"] == "daily at 4:30 AM"
    assert info["nextRunAt"].endswith("T19:30:00.000Z")  # 04:30 KST


def test_waiting_job_keeps_no_next_run_after_schedule_change(client, auth):
    response = client.post("/api/v1/backups", json=body(autoStart="no"), headers=auth)
    job_id = response.get_json()["data"]["results"][0]["id"]

    put(client, auth, job_id, {"schedule": {"type": "hourly", "description": "5 * * * *"}})

    job = db.session.get(BackupJob, job_id)
    assert (job.status, job.next_run_at, job.schedule_expr) == ("waiting", None, "5 * * * *")


def test_rename_and_clear_optional_fields(client, auth, job_id):
    put(client, auth, job_id, {"mailEvent": "ops@example.com", "description": "web"})

    response = put(
        client, auth, job_id, {"jobName": "nightly-web", "mailEvent": None, "description": None}
    )

    fields = [u["field"] for u in response.get_json()["data"]["updatedFields"]]
    assert fields == ["jobName", "mailEvent", "description"]
    job = db.session.get(BackupJob, job_id)
    assert (job.name, job.mail_event, job.description) == ("nightly-web", None, None)


def test_rename_onto_an_existing_job_of_the_partition_is_422(client, auth, job_id):
    client.post("/api/v1/backups", json=body(jobName="other"), headers=auth)

    assert_error(put(client, auth, job_id, {"jobName": "other"}), 422, paths=("jobName",))
    assert db.session.get(BackupJob, job_id).name == "daily-backup-web"


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({}, "_schema"),
        ({"rotation": 0}, "rotation"),
        ({"schedule": {"type": "daily", "description": "0 * * * *"}}, "schedule.description"),
        ({"excludeDir": ["/data/x"]}, "excludeDir"),  # the job's partition is a block device
        ({"type": "incremental"}, "type"),  # the mode is not changeable
        ({"compression": "zip"}, "compression"),
    ],
)
def test_bad_updates_are_422_and_change_nothing(client, auth, job_id, data, path):
    before = (
        put(client, auth, job_id, {"description": "x"})
        and db.session.get(BackupJob, job_id).updated_at
    )

    assert_error(put(client, auth, job_id, data), 422, paths=(path,))

    db.session.expire_all()
    assert db.session.get(BackupJob, job_id).updated_at == before


def test_update_unknown_job_is_404(client, auth):
    assert_error(put(client, auth, 42, {"rotation": 3}), 404)


def test_viewer_may_not_update(client, job_id):
    from tests.conftest import bearer, make_user

    viewer = bearer(make_user("viewer@example.com", role="viewer"))

    assert_error(put(client, viewer, job_id, {"rotation": 3}), 403)
