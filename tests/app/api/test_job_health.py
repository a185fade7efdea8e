"""`health: late` — a job whose backups silently stopped happening — in GET /backups (each
item, and the `?health=` filter), on SQLite and PostgreSQL alike."""

from datetime import datetime, timedelta

import pytest

from app.extensions import db
from app.models import BackupJob, Run
from app.services.job_health import LateBound, late_bound
from app.services.schedule import Schedule
from app.timeutil import utcnow
from tests.app.api.helpers import body
from tests.app.api.openapi_check import assert_documented

pytestmark = pytest.mark.usefixtures("seed_inventory")


def register(client, auth, name, partition="/dev/sda1", **changes) -> BackupJob:
    response = client.post(
        "/api/v1/backups", json=body(jobName=name, partition=[partition], **changes), headers=auth
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return db.session.get(BackupJob, response.get_json()["data"]["results"][0]["id"])


def registered_ago(job: BackupJob, delta: timedelta) -> None:
    job.created_at = utcnow() - delta
    db.session.commit()


def succeeded_ago(job: BackupJob, delta: timedelta, state="success") -> None:
    finished = utcnow() - delta
    db.session.add(
        Run(job_id=job.id, trigger="manual", scheduled_for=finished - timedelta(minutes=5),
            state=state, started_at=finished - timedelta(minutes=5), finished_at=finished)
    )  # fmt: skip
    db.session.commit()


def health(client, auth, job: BackupJob) -> dict:
    status = client.get(f"/api/v1/backups/{job.id}", headers=auth).get_json()["data"]["job"]
    return status["info"]["status"]


def test_daily_job_whose_last_success_is_two_days_old_is_late(client, auth):
    fresh = register(client, auth, "fresh")
    stale = register(client, auth, "stale", "/dev/sda2")
    for job in (fresh, stale):
        registered_ago(job, timedelta(days=30))
    succeeded_ago(fresh, timedelta(hours=25))
    succeeded_ago(stale, timedelta(hours=49))
    succeeded_ago(stale, timedelta(hours=1), state="failed")  # failures do not count

    assert health(client, auth, fresh)["health"] == "ok"
    assert health(client, auth, stale)["health"] == "late"
    assert health(client, auth, stale)["lastSuccessAt"].startswith(
        f"{utcnow() - timedelta(hours=49):%Y-%m-%dT%H}"
    )


def test_a_job_that_never_succeeded_counts_from_its_first_fire_time(client, auth):
    new = register(client, auth, "new")
    forgotten = register(client, auth, "forgotten", "/dev/sda2")
    registered_ago(new, timedelta(hours=30))  # first fire within the last 30 hours
    registered_ago(forgotten, timedelta(days=3))

    assert health(client, auth, new)["health"] == "ok"
    assert health(client, auth, forgotten)["health"] == "late"


def test_hourly_job_three_hours_without_success_is_late(client, auth):
    job = register(client, auth, "hourly", schedule={"type": "hourly", "description": "0 * * * *"})
    registered_ago(job, timedelta(days=1))
    succeeded_ago(job, timedelta(hours=3))

    assert health(client, auth, job)["health"] == "late"


def test_stopped_job_is_inactive_not_late(client, auth):
    job = register(client, auth, "stopped", autoStart="no")
    registered_ago(job, timedelta(days=30))

    assert health(client, auth, job)["health"] == "inactive"


def test_health_filter_agrees_with_the_items(client, auth, admin):
    jobs = {
        "ok": register(client, auth, "ok"),
        "late": register(client, auth, "late", "/dev/sda2"),
        "inactive": register(client, auth, "inactive", "/data", autoStart="no"),
        "late-hourly": register(client, auth, "late-hourly", "/dev/sda1",
                                schedule={"type": "hourly", "description": "5 * * * *"}),
    }  # fmt: skip
    for job in jobs.values():
        registered_ago(job, timedelta(days=10))
    succeeded_ago(jobs["ok"], timedelta(hours=2))
    succeeded_ago(jobs["late-hourly"], timedelta(hours=5))

    for wanted, names in (("late", ["late", "late-hourly"]), ("ok", ["ok"]),
                          ("inactive", ["inactive"])):  # fmt: skip
        answer = client.get(f"/api/v1/backups?health={wanted}", headers=auth).get_json()
        assert "data" in answer, answer
        items = answer["data"]["items"]
        assert [i["job"]["info"]["name"] for i in items] == names, wanted
        assert {i["job"]["info"]["status"]["health"] for i in items} == {wanted}
        assert answer["data"]["pagination"]["totalItems"] == len(names)


def test_unknown_health_value_is_422(client, auth):
    response = client.get("/api/v1/backups?health=sick", headers=auth)

    assert response.status_code == 422
    assert "health" in response.get_json()["detail"]["validationErrors"]


def test_health_is_documented(client, auth):
    register(client, auth, "documented")
    spec = client.get("/api/v1/openapi.json").get_json()

    status = spec["components"]["schemas"]["_Status"]["properties"]
    assert status["health"]["enum"] == ["ok", "late", "inactive"]
    parameters = spec["paths"]["/api/v1/backups"]["get"]["parameters"]
    assert any(p["name"] == "health" for p in parameters)
    assert_documented(spec, "get", "/api/v1/backups", client.get("/api/v1/backups", headers=auth))
    assert_documented(spec, "get", "/api/v1/backups/{ref}", client.get("/api/v1/backups/1",
                                                                          headers=auth))  # fmt: skip


def test_interval_is_the_gap_between_the_last_two_fire_times():
    weekdays = Schedule("custom", "0 2 * * 1-5", "UTC")
    monday = datetime(2026, 11, 30, 10, 0)  # a Monday: the last gap is the weekend
    wednesday = datetime(2026, 12, 2, 10, 0)

    assert late_bound(weekdays, monday).success_before == monday - timedelta(days=6)
    assert late_bound(weekdays, wednesday).success_before == wednesday - timedelta(days=2)
    # never succeeded: late once the first fire time after registration is that old
    assert late_bound(weekdays, wednesday).registered_before == datetime(2026, 11, 30, 2, 0)


def test_seoul_daily_job_interval_in_its_zone():
    seoul = Schedule("daily", "0 2 * * *", "Asia/Seoul")
    now = datetime(2026, 11, 28, 12, 0)

    bound = late_bound(seoul, now)

    assert bound.success_before == now - timedelta(days=2)
    assert bound.registered_before == datetime(2026, 11, 25, 17, 0)  # 02:00 KST on the 26th


def test_one_off_jobs_are_never_late():
    assert late_bound(Schedule("once", "2020-01-01T00:00:00", "UTC"), utcnow()) is None


@pytest.mark.parametrize(
    "schedule",
    [Schedule("custom", "*/15 * * * *", "UTC"), Schedule("daily", "30 2 * * *", "Europe/Berlin"),
     Schedule("custom", "0 2 * * 1-5", "America/New_York"), Schedule("hourly", "7 * * * *", "UTC")],
)  # fmt: skip
def test_the_per_minute_shortcut_gives_the_exact_bounds(schedule):
    from app.services.job_health import _interval_and_registered_before

    start = datetime(2026, 3, 7, 23, 50)  # across a weekend and the US switch to DST
    for step in range(0, 3 * 24 * 60, 7):
        now = start + timedelta(minutes=step, seconds=step % 60, microseconds=step)
        interval, registered_before = _interval_and_registered_before(schedule, now)
        assert late_bound(schedule, now) == LateBound(now - 2 * interval, registered_before), now
