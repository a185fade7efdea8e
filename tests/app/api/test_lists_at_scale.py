"""Lists and registration whose cost does not grow with the estate (issue 8): a page of
jobs in a fixed number of statements, counts on the jobs table alone, the `after` cursor,
large counts reused for a while, and registration in a handful of statements."""

import contextlib
import time
from datetime import timedelta

import pytest
from sqlalchemy import event

from app.extensions import db
from app.models import BackupJob, Center, Repository, Run, User
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


def test_a_deep_page_walks_on_from_a_recent_page_and_is_exact_without_reuse(client, auth, app):
    """Pages at ZDM_LIST_EXACT_COUNT items or deeper start from where a page of the same
    list began less than ZDM_LIST_COUNT_SECONDS ago; shallower pages are always exact."""
    register(client, auth, 8)
    settings = {"ZDM_LIST_EXACT_COUNT": 2, "ZDM_LIST_COUNT_SECONDS": 3600}
    saved = {key: app.config[key] for key in settings}
    app.config.update(settings)
    try:
        first = ids(client.get("/api/v1/backups?limit=2&page=3", headers=auth))  # 5, 6
        shallow_before = ids(client.get("/api/v1/backups?limit=1&page=2", headers=auth))
        job = db.session.get(BackupJob, 1)
        job.deleted_at = utcnow()  # one job before the anchor goes
        db.session.commit()
        with statements() as seen:
            again = ids(client.get("/api/v1/backups?limit=2&page=3", headers=auth))
        onwards = ids(client.get("/api/v1/backups?limit=2&page=4", headers=auth))
        shallow = ids(client.get("/api/v1/backups?limit=1&page=1", headers=auth))
        app.config["ZDM_LIST_COUNT_SECONDS"] = 0
        exact = ids(client.get("/api/v1/backups?limit=2&page=3", headers=auth))
    finally:
        app.config.update(saved)
        app.extensions.pop("zdm_list_counts", None)
        app.extensions.pop("zdm_list_anchors", None)

    assert (first, shallow_before) == ([5, 6], [2])
    # reused: the page still starts at job 5 (exact would be 6, 7), and walks on from there
    assert again == [5, 6]
    assert len(seen) <= 3, seen
    assert onwards == [7, 8]
    assert shallow == [2]  # an offset below ZDM_LIST_EXACT_COUNT is never reused
    assert exact == [6, 7]  # ZDM_LIST_COUNT_SECONDS=0: counted from the start every time


def test_registering_one_partition_takes_two_statements(client, auth):
    with statements() as seen:
        answer = client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)

    assert answer.status_code == 201
    # the token with its user; one INSERT that selects (and checks) the server, its
    # partition and the repository. No duplicate check before it, nothing read back after.
    assert len(seen) == 2, seen
    assert seen[-1].lstrip().upper().startswith("INSERT INTO BACKUP_JOBS")


def test_pages_found_from_an_anchor_do_not_keep_it_alive(client, auth, app):
    """An anchor is trusted for ZDM_LIST_COUNT_SECONDS after the walk from the start it
    derives from, however often it is used meanwhile: the lag stays bounded."""
    register(client, auth, 8)
    settings = {"ZDM_LIST_EXACT_COUNT": 2, "ZDM_LIST_COUNT_SECONDS": 2}
    saved = {key: app.config[key] for key in settings}
    app.config.update(settings)
    try:
        walked = time.monotonic()
        assert ids(client.get("/api/v1/backups?limit=2&page=3", headers=auth)) == [5, 6]
        job = db.session.get(BackupJob, 1)
        job.deleted_at = utcnow()
        db.session.commit()
        seen = []
        for _ in range(100):  # uses of the anchor, until its walk is 2.5 s old
            seen.append(ids(client.get("/api/v1/backups?limit=2&page=3", headers=auth)))
            if time.monotonic() - walked > 2.5:
                break
            time.sleep(0.1)
    finally:
        app.config.update(saved)
        app.extensions.pop("zdm_list_counts", None)
        app.extensions.pop("zdm_list_anchors", None)

    assert seen[0] == [5, 6]  # from the anchor, at first
    assert seen[-1] == [6, 7]  # walked again once the anchor was 2 s old


def _another_center_with_repository() -> int:
    center = Center(name="CENTER-002")
    repository = Repository(center=center, type="local", path="/backup/two")
    db.session.add_all([center, repository])
    db.session.commit()
    return repository.id


@pytest.mark.parametrize(
    ("changes", "status", "where"),
    [
        # excludeDir on a block partition (the check of _partition_problem)
        ({"excludeDir": ["/tmp"]}, 409, "excludeDir"),
        ({"partition": ["/dev/nope"]}, 409, "/dev/nope"),
        ({"repository": {"id": 1, "type": "nfs", "path": "/backup/storage"}}, 422, None),
        ({"repository": {"id": 1, "type": "local", "path": "/backup/other"}}, 422, None),
        ({"repository": "other center"}, 422, None),
        ({"center": "other center"}, 404, None),
        ({"center": "2"}, 404, None),
        ({"server": "2"}, 404, None),
    ],
)
def test_registration_in_one_statement_refuses_what_the_steps_refuse(
    client, auth, changes, status, where
):
    """One partition for the caller is one INSERT that checks the server, its center, the
    partition and the repository on the way: each refusal of the steps still applies."""
    other_repository = _another_center_with_repository()
    if changes.get("repository") == "other center":
        changes = {"repository": {"id": other_repository, "type": "local", "path": "/backup/two"}}
    if changes.get("center") == "other center":
        changes = {"center": "CENTER-002"}

    answer = client.post("/api/v1/backups", json=body(**changes), headers=auth)

    payload = assert_error(answer, status)
    if where is not None:
        assert where in payload["data"]["results"][0]["errorMessage"]
    assert db.session.query(BackupJob).count() == 0


def test_registration_in_one_statement_takes_what_the_steps_take(client, auth, admin):
    other = User(email="other@example.com", password_hash="x", role="viewer")
    db.session.add(other)
    db.session.commit()

    with statements() as slash:
        trailing = client.post(
            "/api/v1/backups",
            json=body(repository={"id": 1, "type": "local", "path": "/backup/storage/"}),
            headers=auth,
        )
    by_ids = client.post(
        "/api/v1/backups",
        json=body(center="1", server="1", user="1", jobName="by-ids", partition=["/data"]),
        headers=auth,
    )
    for_other = client.post(
        "/api/v1/backups",
        json=body(
            user="other@example.com",
            jobName="theirs",
            excludeDir=["/data/tmp"],
            partition=["/data"],
        ),
        headers=auth,
    )

    assert (trailing.status_code, len(slash)) == (201, 2)
    assert by_ids.status_code == 201 and for_other.status_code == 201
    job = db.session.get(BackupJob, for_other.get_json()["data"]["results"][0]["id"])
    assert (job.user_id, job.created_by_id, job.exclude_dirs) == (other.id, admin.id, ["/data/tmp"])
    made = db.session.get(BackupJob, trailing.get_json()["data"]["results"][0]["id"])
    assert made.engine_job == f"job-{made.uuid}" and made.created_at is not None


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
