"""POST /api/v1/backups: the seed's examples and the per-partition rules of SPEC."""

from datetime import UTC, datetime, timedelta

import pytest

from app.extensions import db
from app.models import BackupJob
from tests.app.api.helpers import (
    SEED_ADVANCED,
    SEED_BASIC,
    SEED_BASIC_ANSWER_DATA,
    SEED_SUCCESS_MESSAGE,
    TIMESTAMP,
    assert_error,
    body,
    job_count,
)
from tests.conftest import bearer, make_user

pytestmark = pytest.mark.usefixtures("seed_inventory")


def post(client, auth, data, **headers):
    return client.post("/api/v1/backups", json=data, headers={**auth, **headers})


def test_seed_basic_example_answers_as_the_seed(client, auth):
    response = post(client, auth, SEED_BASIC, **{"X-Request-ID": "req-backup-register"})

    assert response.status_code == 201
    payload = response.get_json()
    assert payload["success"] is True
    assert payload["requestID"] == "req-backup-register"
    assert response.headers["X-Request-ID"] == "req-backup-register"
    assert payload["message"] == SEED_SUCCESS_MESSAGE
    assert TIMESTAMP.match(payload["timestamp"])
    result = payload["data"]["results"][0]
    seed_result = SEED_BASIC_ANSWER_DATA["results"][0]
    assert {k: result[k] for k in seed_result} == seed_result
    assert payload["data"]["summary"] == SEED_BASIC_ANSWER_DATA["summary"]
    assert list(payload) == ["success", "requestID", "data", "message", "timestamp"]


def test_created_job_has_id_and_next_run_at_2am_utc(client, auth):
    result = post(client, auth, SEED_BASIC).get_json()["data"]["results"][0]

    job = db.session.get(BackupJob, result["id"])
    assert job.name == "daily-backup-web" and job.status == "scheduled"
    next_run = datetime.strptime(result["nextRunAt"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert (next_run.hour, next_run.minute) == (2, 0)
    assert timedelta(0) < next_run - datetime.now(UTC).replace(tzinfo=None) <= timedelta(days=1)


def test_seed_advanced_example_registers_both_partitions_with_options(client, auth):
    response = post(client, auth, SEED_ADVANCED)

    assert response.status_code == 201
    results = response.get_json()["data"]["results"]
    assert [r["partition"] for r in results] == ["/dev/sda1", "/dev/sda2"]
    assert {r["jobMode"] for r in results} == {"incremental"}
    assert results[0]["schedule"] == {"basic": "0 * * * *", "advanced": "hourly at minute 0"}
    job = db.session.get(BackupJob, results[1]["id"])
    assert (job.compression, job.network_limit, job.rotation) == ("gzip", 1000, 7)


def test_defaults_when_options_are_absent(client, auth):
    result = post(client, auth, SEED_BASIC).get_json()["data"]["results"][0]

    job = db.session.get(BackupJob, result["id"])
    assert result["autoStart"] == "yes" and job.auto_start is True
    assert (job.rotation, job.network_limit, job.compression, job.encryption) == (
        7,
        0,
        None,
        "none",
    )
    assert job.timezone == "UTC"


def test_auto_start_no_registers_a_waiting_job_without_next_run(client, auth):
    result = post(client, auth, body(autoStart="no")).get_json()["data"]["results"][0]

    assert result["autoStart"] == "no" and result["nextRunAt"] is None
    assert db.session.get(BackupJob, result["id"]).status == "waiting"


def test_all_partitions_minus_excluded_in_server_order(client, auth):
    data = body(partition=["all", "/dev/sda1"], excludePartition=["/dev/sda2"])

    results = post(client, auth, data).get_json()["data"]["results"]

    assert [r["partition"] for r in results] == ["/dev/sda1", "/data"]


def test_duplicate_partitions_are_merged(client, auth):
    response = post(client, auth, body(partition=["/dev/sda1", "/dev/sda1"]))

    assert response.get_json()["data"]["summary"] == {"total": 1, "successful": 1, "failed": 0}


def test_excluding_every_partition_is_a_field_error(client, auth):
    response = post(client, auth, body(partition=["/dev/sda1"], excludePartition=["/dev/sda1"]))

    assert_error(response, 422, paths=("partition",))
    assert job_count() == 0


def test_some_partitions_failing_gives_207_and_success_false(client, auth):
    response = post(client, auth, body(partition=["/dev/sda1", "/dev/sdz9"]))

    assert response.status_code == 207
    payload = response.get_json()
    assert payload["success"] is False
    assert payload["data"]["summary"] == {"total": 2, "successful": 1, "failed": 1}
    failed = payload["data"]["results"][1]
    assert failed["state"] == "fail" and failed["id"] is None
    assert "/dev/sdz9" in failed["errorMessage"] and "web-server-01" in failed["errorMessage"]
    assert job_count() == 1


def test_same_job_name_on_same_partition_fails_and_retry_is_safe(client, auth):
    assert post(client, auth, SEED_ADVANCED).status_code == 201

    retry = post(client, auth, SEED_ADVANCED)

    payload = assert_error(retry, 409)
    assert payload["data"]["summary"] == {"total": 2, "successful": 0, "failed": 2}
    assert all("incremental-backup" in r["errorMessage"] for r in payload["data"]["results"])
    assert job_count() == 2


def test_same_job_name_on_another_partition_is_allowed(client, auth):
    post(client, auth, SEED_BASIC)

    response = post(client, auth, body(partition=["/dev/sda2"]))

    assert response.status_code == 201


def test_exclude_dir_fails_on_block_partition_and_works_on_directory(client, auth):
    data = body(partition=["/dev/sda1", "/data"], excludeDir=["/data/tmp/../cache"])
    # ".." is refused outright in paths
    assert_error(post(client, auth, data), 422, paths=("excludeDir.0",))

    response = post(client, auth, body(partition=["/dev/sda1", "/data"], excludeDir=["/data/tmp/"]))

    assert response.status_code == 207
    block, directory = response.get_json()["data"]["results"]
    assert block["state"] == "fail" and "excludeDir" in block["errorMessage"]
    assert directory["state"] == "success"
    assert db.session.get(BackupJob, directory["id"]).exclude_dirs == ["/data/tmp"]


@pytest.mark.parametrize(
    ("field", "value", "missing"),
    [
        ("center", "CENTER-404", "CENTER-404"),
        ("server", "db-server-09", "db-server-09"),
        ("user", "nobody@example.com", "nobody@example.com"),
    ],
)
def test_unknown_references_are_404_naming_them(client, auth, field, value, missing):
    payload = assert_error(post(client, auth, body(**{field: value})), 404)

    assert missing in payload["error"]
    assert job_count() == 0


def test_unknown_repository_is_404(client, auth):
    data = body(repository={"id": 99, "type": "local", "path": "/backup/storage"})

    payload = assert_error(post(client, auth, data), 404)

    assert "99" in payload["error"]


def test_server_of_another_center_is_404(client, auth, seed_inventory):
    from app.models import Center

    db.session.add(Center(name="CENTER-002"))
    db.session.commit()

    payload = assert_error(post(client, auth, body(center="CENTER-002")), 404)

    assert "web-server-01" in payload["error"] and "CENTER-002" in payload["error"]


def test_center_server_and_user_by_id(client, auth):
    response = post(client, auth, body(center="1", server="1", user="1"))

    assert response.status_code == 201


@pytest.mark.parametrize(
    ("repository", "path"),
    [
        ({"id": 1, "type": "nfs", "path": "/backup/storage"}, "repository.type"),
        ({"id": 1, "type": "local", "path": "/backup/other"}, "repository.path"),
    ],
)
def test_repository_type_or_path_mismatch_is_422(client, auth, repository, path):
    assert_error(post(client, auth, body(repository=repository)), 422, paths=(path,))
    assert job_count() == 0


def test_schedule_timezone_sets_next_run_in_that_zone(client, auth):
    schedule = {"type": "daily", "description": "0 2 * * *", "timezone": "Asia/Seoul"}

    result = post(client, auth, body(schedule=schedule)).get_json()["data"]["results"][0]

    assert result["nextRunAt"].endswith("T17:00:00.000Z")  # 02:00 KST is 17:00 UTC


def test_once_schedule_runs_at_its_time(client, auth):
    at = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    schedule = {"type": "once", "description": at.strftime("%Y-%m-%dT%H:%M:%SZ")}

    result = post(client, auth, body(schedule=schedule)).get_json()["data"]["results"][0]

    assert result["nextRunAt"] == at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert result["schedule"]["advanced"].startswith("once on ")


def test_unicode_job_name_is_kept(client, auth):
    result = post(client, auth, body(jobName="웹서버-일일백업 ✓")).get_json()["data"]["results"][0]

    assert result["jobName"] == "웹서버-일일백업 ✓"
    assert db.session.get(BackupJob, result["id"]).name == "웹서버-일일백업 ✓"


def test_job_name_of_128_characters_is_accepted_and_129_refused(client, auth):
    assert post(client, auth, body(jobName="가" * 128)).status_code == 201
    assert_error(post(client, auth, body(jobName="가" * 129)), 422, paths=("jobName",))


def test_english_when_accept_language_prefers_it(client, auth):
    response = post(client, auth, SEED_BASIC, **{"Accept-Language": "en-US,en;q=0.9,ko;q=0.5"})

    assert response.get_json()["message"] == "Backup jobs were registered successfully."


def test_viewer_may_not_register(client):
    viewer = make_user("viewer@example.com", role="viewer")

    assert_error(post(client, bearer(viewer), SEED_BASIC), 403)
    assert job_count() == 0


def test_operator_may_register(client):
    operator = make_user("ops@example.com", role="operator")

    assert post(client, bearer(operator), SEED_BASIC).status_code == 201


def test_no_token_is_401(client):
    assert_error(client.post("/api/v1/backups", json=SEED_BASIC), 401)
    assert job_count() == 0
