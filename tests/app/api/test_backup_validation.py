"""POST /api/v1/backups refuses bad input with 422 and the dotted field path, storing nothing."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.app.api.helpers import SEED_BASIC, assert_error, body, job_count

pytestmark = pytest.mark.usefixtures("seed_inventory")

REQUIRED = ["center", "server", "type", "partition", "repository", "jobName", "user", "schedule"]


def schedule(**changes):
    return {**SEED_BASIC["schedule"], **changes}


def repository(**changes):
    return {**SEED_BASIC["repository"], **changes}


def without(mapping, key):
    return {k: v for k, v in mapping.items() if k != key}


CASES = [
    # (what is wrong, request, field path)
    *[(f"missing {f}", body(**{f: ...}), f) for f in REQUIRED],
    ("missing repository.id", body(repository=without(SEED_BASIC["repository"], "id")), "repository.id"),
    ("missing repository.type", body(repository=without(SEED_BASIC["repository"], "type")), "repository.type"),
    ("missing repository.path", body(repository=without(SEED_BASIC["repository"], "path")), "repository.path"),
    ("missing schedule.type", body(schedule=without(SEED_BASIC["schedule"], "type")), "schedule.type"),
    ("missing schedule.description", body(schedule=without(SEED_BASIC["schedule"], "description")), "schedule.description"),
    # wrong types
    ("center as number", body(center=1), "center"),
    ("server as list", body(server=["web-server-01"]), "server"),
    ("type as number", body(type=1), "type"),
    ("partition as string", body(partition="/dev/sda1"), "partition"),
    ("partition item as number", body(partition=[1]), "partition.0"),
    ("repository as string", body(repository="1"), "repository"),
    ("repository.id as string", body(repository=repository(id="1")), "repository.id"),
    ("repository.id as float", body(repository=repository(id=1.5)), "repository.id"),
    ("jobName as number", body(jobName=7), "jobName"),
    ("user as object", body(user={"id": 1}), "user"),
    ("schedule as string", body(schedule="0 2 * * *"), "schedule"),
    ("schedule.description as number", body(schedule=schedule(description=2)), "schedule.description"),
    ("rotation as string", body(rotation="7"), "rotation"),
    ("rotation as float", body(rotation=7.5), "rotation"),
    ("networkLimit as string", body(networkLimit="1000"), "networkLimit"),
    ("excludeDir as string", body(excludeDir="/tmp"), "excludeDir"),
    ("excludePartition as string", body(excludePartition="/dev/sda2"), "excludePartition"),
    ("mailEvent as list", body(mailEvent=["a@example.com"]), "mailEvent"),
    ("description as number", body(description=5), "description"),
    ("autoStart as boolean", body(autoStart=True), "autoStart"),
    ("null jobName", body(jobName=None), "jobName"),
    # out of range
    ("empty partition list", body(partition=[]), "partition"),
    ("empty partition name", body(partition=[""]), "partition.0"),
    ("rotation 0", body(rotation=0), "rotation"),
    ("rotation 366", body(rotation=366), "rotation"),
    ("negative networkLimit", body(networkLimit=-1), "networkLimit"),
    ("empty jobName", body(jobName=""), "jobName"),
    ("jobName with surrounding space", body(jobName=" web "), "jobName"),
    ("jobName with control character", body(jobName="web\nbackup"), "jobName"),
    ("description over 1000", body(description="x" * 1001), "description"),
    ("relative excludeDir", body(excludeDir=["tmp"]), "excludeDir.0"),
    ("excludeDir with ..", body(excludeDir=["/data/../etc"]), "excludeDir.0"),
    ("bad mail address", body(mailEvent="ops@example.com, not-an-address"), "mailEvent"),
    # wrong choice
    ("type differential", body(type="differential"), "type"),
    ("compression zip", body(compression="zip"), "compression"),
    ("encryption des", body(encryption="des"), "encryption"),
    ("autoStart maybe", body(autoStart="maybe"), "autoStart"),
    ("schedule.type yearly", body(schedule=schedule(type="yearly")), "schedule.type"),
    # schedules
    ("cron with six fields", body(schedule=schedule(description="0 0 2 * * *")), "schedule.description"),
    ("cron with four fields", body(schedule=schedule(description="0 2 * *")), "schedule.description"),
    ("cron out of range", body(schedule=schedule(description="61 2 * * *")), "schedule.description"),
    ("cron garbage", body(schedule=schedule(description="every day")), "schedule.description"),
    ("unknown alias", body(schedule=schedule(description="@yearly")), "schedule.description"),
    ("daily that fires hourly", body(schedule=schedule(description="0 * * * *")), "schedule.description"),
    ("hourly that fires every minute", body(schedule=schedule(type="hourly", description="* * * * *")), "schedule.description"),
    ("weekly without weekday", body(schedule=schedule(type="weekly", description="0 2 * * *")), "schedule.description"),
    ("monthly without day", body(schedule=schedule(type="monthly", description="0 2 * * *")), "schedule.description"),
    ("invalid timezone", body(schedule=schedule(timezone="Mars/Olympus")), "schedule.timezone"),
    ("once not a date", body(schedule=schedule(type="once", description="tomorrow")), "schedule.description"),
    ("once in the past", body(schedule=schedule(type="once", description="2020-01-01T00:00:00Z")), "schedule.description"),
    # unknown fields
    ("unknown top-level field", body(priority="high"), "priority"),
    ("unknown nested field", body(schedule=schedule(jitter=5)), "schedule.jitter"),
    ("unknown repository field", body(repository=repository(region="kr")), "repository.region"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("request_body", "path"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_field_is_422_with_its_path_and_nothing_is_stored(client, auth, request_body, path):
    response = client.post("/api/v1/backups", json=request_body, headers=auth)

    payload = assert_error(response, 422, paths=(path,))
    assert all(isinstance(m, str) and m for m in payload["detail"]["validationErrors"][path])
    assert job_count() == 0


def test_every_missing_required_field_is_reported_at_once(client, auth):
    response = client.post("/api/v1/backups", json={}, headers=auth)

    payload = assert_error(response, 422, paths=tuple(REQUIRED))
    assert payload["detail"]["validationErrors"]["center"] == ["필수 필드입니다"]


def test_field_messages_follow_accept_language(client, auth):
    headers = {**auth, "Accept-Language": "en"}
    response = client.post("/api/v1/backups", json=body(center=...), headers=headers)

    payload = assert_error(response, 422)
    assert payload["error"] == "The request has invalid fields."
    assert payload["detail"]["validationErrors"]["center"] == ["Missing data for required field."]


def test_custom_schedule_takes_any_valid_expression(client, auth):
    data = body(schedule=schedule(type="custom", description="*/15 9-17 * * 1-5"))

    response = client.post("/api/v1/backups", json=data, headers=auth)

    assert response.status_code == 201
    advanced = response.get_json()["data"]["results"][0]["schedule"]["advanced"]
    assert advanced.startswith("every 15 minutes") and "Monday" in advanced


@pytest.mark.parametrize(
    ("type_", "expression", "advanced"),
    [
        ("daily", "@daily", "daily at 12:00 AM"),
        ("hourly", "@hourly", "hourly at minute 0"),
        ("weekly", "30 14 * * 5", "weekly on Friday at 2:30 PM"),
        ("monthly", "0 3 15 * *", "monthly on day 15 at 3:00 AM"),
    ],
)
def test_each_schedule_type_accepts_its_shape(client, auth, type_, expression, advanced):
    data = body(schedule=schedule(type=type_, description=expression))

    response = client.post("/api/v1/backups", json=data, headers=auth)

    assert response.status_code == 201
    assert response.get_json()["data"]["results"][0]["schedule"] == {
        "basic": expression,
        "advanced": advanced,
    }


def test_once_in_the_future_is_accepted(client, auth):
    at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    data = body(schedule=schedule(type="once", description=at))

    assert client.post("/api/v1/backups", json=data, headers=auth).status_code == 201
