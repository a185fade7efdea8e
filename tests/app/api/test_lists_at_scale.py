"""Lists and registration whose cost does not grow with the estate (issue 8): a page of
jobs in a fixed number of statements, counts on the jobs table alone, the `after` cursor,
large counts reused for a while, and registration in a handful of statements."""

import contextlib
from datetime import timedelta

import pytest
from sqlalchemy import event

from app.extensions import db
from app.models import BackupJob, Run
from app.timeutil import utcnow
from tests.app.api.helpers import SEED_BASIC, assert_error, body

pytestmark = pytest.mark.usefixtures("seed_inventory")


@contextlib.contextmanager
def statements():
    """The SQL statements the database receives meanwhile (BEGIN/COMMIT aside)."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def register(client, auth, count: int, prefix: str = "job") -> None:
    """`count` jobs: distinct names, on /dev/sda1, /dev/sda2 and /data in turn."""
    partitions = ["/dev/sda1", "/dev/sda2", "/data"]
    for n in range(count):
        answer = client.post(
            "/api/v1/backups",
            json=body(jobName=f"{prefix}-{n:03d}", partition=[partitions[n % 3]]),
            headers=auth,
        )
        assert answer.status_code == 201, answer.get_json()


def ids(answer) -> list[int]:
    return [item["job"]["info"]["id"] for item in answer.get_json()["data"]["items"]]


def started_run(job_id: int, minutes_ago: int, finished: bool = True) -> None:
    start = utcnow() - timedelta(minutes=minutes_ago)
    db.session.add(
        Run(
            job_id=job_id,
            trigger="schedule",
            scheduled_for=start,
            state="success" if finished else "running",
            started_at=start,
            finished_at=start + timedelta(seconds=90) if finished else None,
        )
    )
    db.session.commit()


def test_a_page_of_jobs_costs_the_same_statements_whatever_its_length(client, auth):
    register(client, auth, 24)
    for job_id in range(1, 25):
        started_run(job_id, minutes_ago=10)

    with statements() as short:
        assert len(ids(client.get("/api/v1/backups?limit=2", headers=auth))) == 2
    with statements() as long:
        assert len(ids(client.get("/api/v1/backups?limit=20", headers=auth))) == 20

    # the token, the page's ids, the count, the jobs with all they show: no query per item
    assert len(long) == len(short) <= 4, long


def test_counting_a_filtered_list_joins_no_other_table(client, auth):
    register(client, auth, 3)

    with statements() as seen:
        answer = client.get(
            "/api/v1/backups?center=CENTER-001&server=web-server-01&partition=/dev/sda2",
            headers=auth,
        )

    assert ids(answer) == [2]
    [count] = [" ".join(s.split()) for s in seen if "count(" in s.lower()]
    # backup_jobs alone, its filters on its own columns (the partition named becomes ids)
    assert "FROM backup_jobs WHERE" in count and "backup_jobs JOIN" not in count, count


def test_each_item_shows_its_latest_started_run(client, auth):
    register(client, auth, 3)
    started_run(1, minutes_ago=60)
    started_run(1, minutes_ago=5, finished=False)  # the newest: still running
    started_run(2, minutes_ago=30)

    items = client.get("/api/v1/backups", headers=auth).get_json()["data"]["items"]
    times = [item["job"]["info"]["status"]["time"] for item in items]

    assert times[0]["start"] is not None and times[0]["end"] is None
    assert times[0]["elapsed"] >= 299
    assert times[1]["end"] is not None and times[1]["elapsed"] == 90
    assert times[2] == {"start": None, "elapsed": None, "end": None}


def test_after_answers_the_jobs_that_follow_an_id(client, auth):
    register(client, auth, 5)

    answer = client.get("/api/v1/backups?after=2&limit=2", headers=auth)

    assert ids(answer) == [3, 4]
    assert answer.get_json()["data"]["pagination"] == {
        "currentPage": None,
        "totalPages": 3,
        "totalItems": 5,
        "itemsPerPage": 2,
        "hasNextPage": True,
        "hasPreviousPage": True,
    }
    last = client.get("/api/v1/backups?after=4&limit=2", headers=auth).get_json()["data"]
    assert [i["job"]["info"]["id"] for i in last["items"]] == [5]
    assert (last["pagination"]["hasNextPage"], last["pagination"]["hasPreviousPage"]) == (
        False,
        True,
    )
    first = client.get("/api/v1/backups?after=0&limit=2", headers=auth)
    assert_error(first, 422, paths=("after",))  # ids start at 1


def test_after_follows_filters_and_deleted_ids(client, auth):
    register(client, auth, 6)
    client.delete("/api/v1/backups/4", headers=auth)

    answer = client.get("/api/v1/backups?partition=/dev/sda1&after=1", headers=auth)
    deleted = client.get("/api/v1/backups?after=3&limit=1", headers=auth)

    assert ids(answer) == []  # /dev/sda1 holds jobs 1 and 4, and 4 was deleted
    assert ids(deleted) == [5]


def test_page_and_after_together_are_refused(client, auth):
    payload = assert_error(
        client.get("/api/v1/backups?page=2&after=3", headers=auth),
        422,
        paths=("after",),
    )
    assert payload["detail"]["validationErrors"]["after"]


def test_histories_and_points_take_after_newest_first(client, auth):
    register(client, auth, 1)
    for minutes in (30, 20, 10):
        started_run(1, minutes_ago=minutes)

    histories = client.get("/api/v1/backups/histories?after=3", headers=auth).get_json()
    job_runs = client.get("/api/v1/backups/1/runs?after=2", headers=auth).get_json()

    assert [r["id"] for r in histories["data"]["items"]] == [2, 1]
    assert [r["id"] for r in job_runs["data"]["items"]] == [1]
    assert histories["data"]["pagination"]["hasPreviousPage"] is True


def test_a_large_count_is_reused_for_a_while_and_a_small_one_never(client, auth, app):
    register(client, auth, 3)
    settings = {"ZDM_LIST_EXACT_COUNT": 3, "ZDM_LIST_COUNT_SECONDS": 3600}
    saved = {key: app.config[key] for key in settings}
    app.config.update(settings)
    try:
        assert (
            client.get("/api/v1/backups", headers=auth).get_json()["data"]["pagination"][
                "totalItems"
            ]
            == 3
        )
        register(client, auth, 1, prefix="one-more")

        reused = client.get("/api/v1/backups", headers=auth).get_json()["data"]
        app.config["ZDM_LIST_COUNT_SECONDS"] = 0
        counted = client.get("/api/v1/backups", headers=auth).get_json()["data"]
        small = client.get("/api/v1/backups?partition=/data", headers=auth).get_json()["data"]
    finally:
        app.config.update(saved)
        app.extensions.pop("zdm_list_counts", None)

    # the items are always read fresh; only a count of ZDM_LIST_EXACT_COUNT or more is reused
    assert (len(reused["items"]), reused["pagination"]["totalItems"]) == (4, 3)
    assert counted["pagination"]["totalItems"] == 4
    assert small["pagination"]["totalItems"] == 1


def test_registering_one_partition_takes_three_statements(client, auth):
    with statements() as seen:
        answer = client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)

    assert answer.status_code == 201
    # the token with its user; the server with its center and partitions, and the
    # repository; the INSERT. No duplicate check before it, nothing read back after it.
    assert len(seen) == 3, seen
    assert seen[-1].lstrip().upper().startswith("INSERT INTO BACKUP_JOBS")


def test_a_duplicate_is_refused_by_the_index_in_both_paths(client, auth):
    client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)

    alone = client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)
    beside = client.post(
        "/api/v1/backups", json=body(partition=["/dev/sda1", "/dev/sda2"]), headers=auth
    )

    assert alone.status_code == 409
    assert alone.get_json()["data"]["results"][0]["errorMessage"]
    assert beside.status_code == 207
    states = [(r["partition"], r["state"]) for r in beside.get_json()["data"]["results"]]
    assert states == [("/dev/sda1", "fail"), ("/dev/sda2", "success")]
    assert db.session.query(BackupJob).filter_by(name=SEED_BASIC["jobName"]).count() == 2
