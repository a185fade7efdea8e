"""POST /api/v1/restores: where a restore may write (SPEC "Restores"), as the API checks it.

The test app's restore root is /var/lib/zdm/restores (tests/conftest.py). The API never looks
at the file system, so none of these paths has to exist; the agent checks them again on its
own machine (tests/end_to_end/test_restore_policy.py).
"""

import pytest

import config
from app import create_app
from app.extensions import db
from app.models import BackupJob, Center, RecoveryPoint, Repository, Restore, Run, Server
from tests.app.api.helpers import assert_error, body
from tests.conftest import bearer, make_user
from tests.jobs import queued_messages

ROOT = "/var/lib/zdm/restores"
EN = {"Accept-Language": "en"}


@pytest.fixture
def point(client, auth, seed_inventory, broker):
    """A recovery point of a job on /dev/sda1 of web-server-01."""
    response = client.post("/api/v1/backups", json=body(), headers=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    job = db.session.get(BackupJob, response.get_json()["data"]["results"][0]["id"])
    point = RecoveryPoint(engine_id="20300101T000000Z-abcdef", job_id=job.id, repository_id=1,
                          server_id=1, partition_name="/dev/sda1", partition_kind="block",
                          engine_job=job.engine_job, mode="full", source_size=100)  # fmt: skip
    db.session.add(point)
    db.session.commit()
    return point


@pytest.fixture
def operator(app):
    return bearer(make_user("operator@example.com", role="operator"))


def restore(client, headers, point, target, **extra):
    data = {"recoveryPoint": point.id, "server": "web-server-01", "target": target, **extra}
    return client.post("/api/v1/restores", json=data, headers={**headers, **EN})


def assert_refused(response, status: int, sentence: str) -> None:
    """The error envelope with the rule's sentence; for 422 also as the field's message."""
    payload = assert_error(response, status)
    assert payload["error"] == sentence
    if status == 422:
        assert payload["detail"] == {"validationErrors": {"target": [sentence]}}
    else:
        assert "detail" not in payload


OUTSIDE = (
    "Target {t} is not under a restore root (/var/lib/zdm/restores); a restore writes a new "
    "file or directory under a restore root, or onto a served partition named as the partition."
)
SYSTEM = (
    "Target {t} overlaps /proc, /sys or /dev; a restore writes there only onto a partition the "
    "server serves, named as the partition."
)
REPOSITORY = "Target {t} overlaps repository {r}; a restore never writes into a repository."


def test_a_new_file_under_a_root_is_queued_for_the_agent(client, operator, point, broker):
    response = restore(client, operator, point, f"{ROOT}//sda1/./restored.img")

    assert response.status_code == 202, response.get_data(as_text=True)
    data = response.get_json()["data"]
    assert (data["state"], data["target"]) == ("queued", f"{ROOT}/sda1/restored.img")
    assert queued_messages(broker) == [
        {
            "task": "zdm.restore.run",
            "restore_id": data["id"],
            "recovery_point_id": point.id,
            "job_id": point.job_id,
            "job_name": db.session.get(BackupJob, point.job_id).name,
        }
    ]
    stored = db.session.get(Restore, data["id"])
    assert (stored.overwrite, stored.requested_by.email) == (False, "operator@example.com")


def test_overwrite_is_stored_for_the_agent(client, operator, point, broker):
    response = restore(client, operator, point, f"{ROOT}/sda1.img", overwrite=True)

    assert response.status_code == 202
    assert db.session.get(Restore, response.get_json()["data"]["id"]).overwrite is True


@pytest.mark.parametrize(
    ("target", "sentence"),
    [
        ("/etc/passwd", OUTSIDE.format(t="/etc/passwd")),
        ("/etc/shadow", OUTSIDE.format(t="/etc/shadow")),
        ("/root/.ssh/authorized_keys", OUTSIDE.format(t="/root/.ssh/authorized_keys")),
        (ROOT, OUTSIDE.format(t=ROOT)),  # the root itself is not "under" it
        ("/var/lib/zdm", OUTSIDE.format(t="/var/lib/zdm")),
        ("/backup/storage", REPOSITORY.format(t="/backup/storage", r="/backup/storage")),
        ("/backup/storage/config", REPOSITORY.format(t="/backup/storage/config", r="/backup/storage")),
        ("/backup", REPOSITORY.format(t="/backup", r="/backup/storage")),
        ("/proc/self/mem", SYSTEM.format(t="/proc/self/mem")),
        ("/proc/sys/kernel/core_pattern", SYSTEM.format(t="/proc/sys/kernel/core_pattern")),
        ("/sys/kernel/mm", SYSTEM.format(t="/sys/kernel/mm")),
        ("/dev/sdb", SYSTEM.format(t="/dev/sdb")),  # not a partition of web-server-01
        ("/dev/sda1/x", SYSTEM.format(t="/dev/sda1/x")),
        ("/", SYSTEM.format(t="/")),
    ],
)  # fmt: skip
def test_a_forbidden_target_is_422_naming_the_rule(client, auth, point, broker, target, sentence):
    assert_refused(restore(client, auth, point, target, overwrite=True), 422, sentence)
    assert db.session.query(Restore).count() == 0
    assert queued_messages(broker) == []


def test_a_repository_inside_a_restore_root_stays_forbidden(client, auth, point, broker):
    db.session.add(Repository(center_id=1, type="local", path=f"{ROOT}/repo"))
    db.session.commit()

    for target in (f"{ROOT}/repo/config", f"{ROOT}/repo/points/x", f"{ROOT}/repo"):
        response = restore(client, auth, point, target, overwrite=True)
        assert_refused(response, 422, REPOSITORY.format(t=target, r=f"{ROOT}/repo"))
    assert db.session.query(Restore).count() == 0


def test_korean_is_the_default_language_of_the_rule(client, auth, point):
    data = {"recoveryPoint": point.id, "server": "web-server-01", "target": "/etc/passwd"}
    payload = assert_error(client.post("/api/v1/restores", json=data, headers=auth), 422)

    assert payload["error"] == (
        "복구 대상 '/etc/passwd'이(가) 복구 루트(/var/lib/zdm/restores) 아래에 있지 않습니다. "
        "새 파일이나 디렉터리는 복구 루트 아래에, 제자리 복구는 파티션 이름으로 지정하세요"
    )


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("restores/sda1.img", "Must be an absolute path."),
        ("", "Must be an absolute path."),
        (f"{ROOT}/../../../etc/passwd", "Must not contain '..'."),
        (f"{ROOT}/a/..", "Must not contain '..'."),
        (f"{ROOT}/a\x00b", "NUL characters and unpaired surrogates are not allowed."),
        (f"{ROOT}/a\nb", "Must not contain control characters (NUL, line breaks, ...)."),
        (f"{ROOT}/" + "a" * 1010, "Must be at most 1024 characters long, each name in it at most 255 bytes."),
        (f"{ROOT}/" + "가" * 86, "Must be at most 1024 characters long, each name in it at most 255 bytes."),
    ],
)  # fmt: skip
def test_a_badly_shaped_target_is_422_on_the_field(client, auth, point, target, message):
    payload = assert_error(restore(client, auth, point, target), 422)

    assert payload["detail"]["validationErrors"] == {"target": [message]}


def test_overwrite_must_be_a_boolean(client, auth, point):
    payload = assert_error(restore(client, auth, point, f"{ROOT}/x", overwrite="yes"), 422)

    assert payload["detail"]["validationErrors"] == {"overwrite": ["Not a valid boolean."]}


def test_a_viewer_may_not_restore(client, point):
    viewer = bearer(make_user("viewer@example.com", role="viewer"))

    assert_error(restore(client, viewer, point, f"{ROOT}/x"), 403)


# ---- in place -------------------------------------------------------------------------------


def test_an_admin_restores_onto_a_served_partition_in_place(client, auth, point, broker):
    response = restore(client, auth, point, "/dev/sda1", overwrite=True)

    assert response.status_code == 202, response.get_data(as_text=True)
    data = response.get_json()["data"]
    assert data["target"] == "/dev/sda1"
    assert db.session.get(Restore, data["id"]).overwrite is True
    assert [m["restore_id"] for m in queued_messages(broker)] == [data["id"]]


def test_an_operator_may_not_restore_in_place(client, operator, point, broker):
    assert_refused(
        restore(client, operator, point, "/dev/sda1", overwrite=True),
        403,
        "Only an admin may restore onto partition /dev/sda1 in place.",
    )
    assert db.session.query(Restore).count() == 0


def test_in_place_without_overwrite_is_422(client, auth, point, broker):
    assert_refused(
        restore(client, auth, point, "/dev/sda2"),
        422,
        "Restoring onto partition /dev/sda2 in place replaces its data: set overwrite to true.",
    )
    assert db.session.query(Restore).count() == 0


BUSY = (
    "A backup run or restore of partition /dev/sda1 is queued or running; restore onto it in "
    "place after it has ended."
)


def test_in_place_while_a_run_of_the_partition_is_unfinished_is_409(client, auth, point, broker):
    run = client.post(f"/api/v1/backups/{point.job_id}/run", headers=auth)
    assert run.status_code == 202

    assert_refused(restore(client, auth, point, "/dev/sda1", overwrite=True), 409, BUSY)
    assert db.session.query(Restore).count() == 0
    # another partition of the server is not busy
    assert restore(client, auth, point, "/dev/sda2", overwrite=True).status_code == 202


def test_in_place_while_another_restore_of_the_partition_is_unfinished_is_409(
    client, auth, point, broker
):
    assert restore(client, auth, point, "/dev/sda1", overwrite=True).status_code == 202

    assert_refused(restore(client, auth, point, "/dev/sda1", overwrite=True), 409, BUSY)
    assert db.session.query(Restore).count() == 1


def test_a_finished_run_does_not_make_the_partition_busy(client, auth, point, broker):
    run_id = client.post(f"/api/v1/backups/{point.job_id}/run", headers=auth).get_json()["data"][
        "runId"
    ]

    db.session.get(Run, run_id).state = "success"
    db.session.commit()

    assert restore(client, auth, point, "/dev/sda1", overwrite=True).status_code == 202


def test_a_target_inside_an_unfinished_restores_target_is_409(client, operator, point, broker):
    assert restore(client, operator, point, f"{ROOT}/tree").status_code == 202

    assert_refused(
        restore(client, operator, point, f"{ROOT}/tree/etc/passwd"),
        409,
        f"Target {ROOT}/tree/etc/passwd overlaps {ROOT}/tree, the target of another restore "
        "in progress.",
    )


# ---- the service's database (a SQLite file) ------------------------------------------------


@pytest.fixture
def sqlite_service(tmp_path, redis_url):
    """The service on a SQLite file whose directory is also a restore root: only the database
    rule stands between a restore and the file. (The suite's own database may be PostgreSQL,
    which has no file to protect.)"""

    class SqliteConfig(config.Config):
        TESTING = True
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'zdm.sqlite3'}"
        REDIS_URL = redis_url
        ZDM_RESTORE_ROOTS = [str(tmp_path)]

    application = create_app(SqliteConfig)
    with application.app_context():
        from flask_migrate import upgrade

        upgrade()
        yield application
        db.session.remove()


def test_the_services_database_is_never_a_target(sqlite_service, tmp_path):
    client = sqlite_service.test_client()
    auth = bearer(make_user())
    center = Center(name="CENTER-001")
    server = Server(name="web-server-01", center=center)
    repository = Repository(center=center, type="local", path="/backup/storage")
    db.session.add_all([center, server, repository])
    db.session.flush()
    point = RecoveryPoint(engine_id="20300101T000000Z-abcdef", repository=repository,
                          server_id=server.id, partition_name="/dev/sda1", partition_kind="block",
                          engine_job="job-x", mode="full")  # fmt: skip
    db.session.add(point)
    db.session.commit()
    database = str(tmp_path / "zdm.sqlite3")

    for target in (database, database + "-wal", database + "-shm"):
        assert_refused(
            restore(client, auth, point, target, overwrite=True),
            422,
            f"Target {target} overlaps the service's database file {target}; a restore never "
            "writes there.",
        )
    assert restore(client, auth, point, str(tmp_path / "restored.img")).status_code == 202
