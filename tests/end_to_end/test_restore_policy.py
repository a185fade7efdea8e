"""The agent checks where a restore writes, on its own machine, before it writes a byte.

A real agent (a Celery worker consuming `zdm.server.<name>`) on a private Redis and the suite's
kind of database. The forbidden restores are made by hand, bypassing the API: a `Restore` row
and its message put straight into the agent's queue, as `app.services.run_commands.request_restore`
sends it. Each must end `failed` with the rule's sentence and leave the target's bytes as
they were. The agent's restore root is `<tmp>/restores`; `<tmp>/etc/passwd` stands for
/etc/passwd.

The partitions are image files named `/zdm-test/sda1` and `/zdm-test/sda2`, not `/dev/sda1`:
an agent that wrote to the name instead of the path it serves (main's did) finds no such
directory here, instead of a disk of the test machine.
"""

import hashlib
import os
import stat
from pathlib import Path

import pytest

import config
from app import create_app
from app.extensions import db
from app.models import Restore, Run, Server, User
from app.services import dispatch
from app.timeutil import utcnow
from tests.conftest import _worker_database, bearer, make_user
from tests.end_to_end.processes import Process, celery, flask_cli, service_env, wait_until

# One agent for the module: keep its tests on one xdist worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("restore-policy-agent")]

SERVER = "restore-agent-01"
MiB = 1024 * 1024


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Agent:
    """An agent serving two image files, with its database, repository and restore root."""

    def __init__(self, tmp: Path, database_url: str, redis_url: str):
        self.tmp = tmp
        self.root = tmp / "restores"
        self.root.mkdir(mode=0o700)
        (tmp / "disks").mkdir()
        self.images = {
            "/zdm-test/sda1": tmp / "disks" / "sda1.img",
            "/zdm-test/sda2": tmp / "disks" / "sda2.img",
        }
        for image in self.images.values():
            image.write_bytes(os.urandom(MiB) + b"ZDM restore policy\n" * 30000)
        self.original = sha256(self.images["/zdm-test/sda1"])
        self.repository = tmp / "repository"
        self.passwd = tmp / "etc" / "passwd"  # stands for /etc/passwd
        self.passwd.parent.mkdir()
        self.passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
        env = service_env(
            database_url, tmp, redis_url,
            ZDM_AGENT_CENTER="CENTER-001",
            ZDM_AGENT_SERVER=SERVER,
            ZDM_AGENT_PARTITIONS=",".join(f"{k}={v}" for k, v in self.images.items()),
            ZDM_RESTORE_ROOTS=str(self.root),
        )  # fmt: skip
        assert flask_cli(env, "zdm", "init").returncode == 0
        root = str(self.root)

        class AgentTestConfig(config.Config):
            SQLALCHEMY_DATABASE_URI = database_url
            REDIS_URL = redis_url
            ZDM_RESTORE_ROOTS = [root]

        self.app = create_app(AgentTestConfig)
        self.app.before_request(lambda: db.session.expire_all())
        (tmp / "logs").mkdir()
        self.process = Process(
            "agent",
            celery("worker", "-Q", f"zdm.server.{SERVER}", "-n", "restore-agent@%h", "-c", "2",
                   "--without-mingle", "--without-gossip", "-l", "INFO"),
            env,
            tmp / "logs",
        )  # fmt: skip


def _registered() -> bool:
    db.session.remove()
    server = db.session.query(Server).filter_by(name=SERVER).one_or_none()
    return server is not None and len(server.partitions) == 2


@pytest.fixture(scope="module")
def agent(tmp_path_factory, worker_id, redis_url):
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    tmp = tmp_path_factory.mktemp("restore-policy")
    base = os.environ.get("TEST_DATABASE_URL")
    url = (
        _worker_database(base, f"{worker_id}_restores")
        if base
        else f"sqlite:///{tmp / 'zdm.sqlite3'}"
    )
    agent = Agent(tmp, url, redis_url)
    try:
        with agent.app.app_context():
            wait_until(_registered, 60, what="agent registration")
            admin, operator = make_user(), make_user("op@example.com", "operator")
            agent.admin, agent.operator = admin.id, operator.id
            agent.auth = bearer(admin)
            agent.point_id, agent.job_id = _back_up_sda1(agent)
        yield agent
    except BaseException:
        print(agent.process.tail())
        raise
    finally:
        agent.process.stop()  # a PostgreSQL database is dropped when the session ends


def _back_up_sda1(agent: Agent) -> tuple[int, int]:
    """A full backup of /zdm-test/sda1 by the agent; its recovery point and job ids."""
    client = agent.app.test_client()
    repository = {"center": "CENTER-001", "type": "local", "path": str(agent.repository)}
    assert (
        client.post("/api/v1/repositories", json=repository, headers=agent.auth).status_code == 201
    )
    job = {"center": "CENTER-001", "server": SERVER, "type": "full", "partition": ["/zdm-test/sda1"],
           "repository": {"id": 1, **{k: repository[k] for k in ("type", "path")}},
           "jobName": "sda1", "user": "admin@example.com", "autoStart": "no",
           "schedule": {"type": "daily", "description": "0 3 * * *"}}  # fmt: skip
    response = client.post("/api/v1/backups", json=job, headers=agent.auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    job_id = response.get_json()["data"]["results"][0]["id"]
    run_id = client.post(f"/api/v1/backups/{job_id}/run", headers=agent.auth).get_json()["data"][
        "runId"
    ]

    def finished():
        db.session.remove()
        run = db.session.get(Run, run_id)
        return run if run.state not in ("queued", "running") else None

    run = wait_until(finished, 60, what="the backup of /zdm-test/sda1")
    assert run.state == "success", run.error_message
    points = client.get(f"/api/v1/backups/{job_id}/recovery-points", headers=agent.auth)
    return points.get_json()["data"]["items"][0]["id"], job_id


@pytest.fixture
def app_context(agent):
    with agent.app.app_context():
        yield
        db.session.remove()


def hand_made_restore(agent: Agent, target, overwrite=True, requester: int | None = None):
    """A restore row and its message, bypassing the API; returns the finished restore.
    `requester`: a user id, by default the admin's."""
    restore = Restore(recovery_point_id=agent.point_id, server_id=_server_id(), target=str(target),
                      overwrite=overwrite, requested_by_id=requester or agent.admin,
                      state="queued")  # fmt: skip
    db.session.add(restore)
    db.session.commit()
    dispatch.send(
        dispatch.RESTORE_TASK,
        dispatch.server_queue(SERVER),
        {"restore_id": restore.id, "recovery_point_id": agent.point_id},
    )
    return wait_for(restore.id)


def _server_id() -> int:
    return db.session.query(Server).filter_by(name=SERVER).one().id


def wait_for(restore_id: int) -> Restore:
    def finished():
        db.session.rollback()  # a fresh read; the rows already read stay usable
        restore = db.session.get(Restore, restore_id)
        return restore if restore.state not in ("queued", "running") else None

    return wait_until(finished, 60, what=f"restore {restore_id}")


def assert_refused(restore: Restore, sentence: str) -> None:
    assert (restore.state, restore.error_message) == ("failed", sentence)
    assert restore.log[-1].endswith(sentence)
    assert restore.bytes_restored == 0 and restore.started_at is not None


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".zdm-restore-" in p.name)


# ---- refused ----------------------------------------------------------------------------------


def test_a_file_outside_the_restore_roots_is_not_touched(agent, app_context):
    before = sha256(agent.passwd)

    restore = hand_made_restore(agent, agent.passwd)

    assert_refused(
        restore,
        f"Target {agent.passwd} is not under a restore root ({agent.root}); a restore writes a "
        "new file or directory under a restore root, or onto a served partition named as the "
        "partition.",
    )
    assert sha256(agent.passwd) == before
    assert leftovers(agent.passwd.parent) == []


def test_the_repositorys_own_config_is_not_touched(agent, app_context):
    config_file = agent.repository / "config"
    before = sha256(config_file)

    restore = hand_made_restore(agent, config_file)

    assert_refused(
        restore,
        f"Target {config_file} overlaps repository {agent.repository}; a restore never writes "
        "into a repository.",
    )
    assert sha256(config_file) == before
    assert leftovers(agent.repository) == []


def test_a_symlink_inside_the_root_that_leads_out_of_it_is_not_followed(agent, app_context):
    (agent.root / "etc-link").symlink_to(agent.passwd.parent)
    (agent.root / "passwd-link").symlink_to(agent.passwd)
    before = sha256(agent.passwd)

    through_directory = hand_made_restore(agent, agent.root / "etc-link" / "passwd")
    through_file = hand_made_restore(agent, agent.root / "passwd-link")

    assert_refused(
        through_directory,
        f"Target {agent.root}/etc-link/passwd leads through a symbolic link to {agent.passwd}, "
        f"outside the restore roots ({agent.root}).",
    )
    assert_refused(
        through_file,
        f"Target {agent.root}/passwd-link leads through a symbolic link to {agent.passwd}, "
        f"outside the restore roots ({agent.root}).",
    )
    assert sha256(agent.passwd) == before
    assert (agent.root / "passwd-link").is_symlink()
    assert leftovers(agent.passwd.parent) == [] and leftovers(agent.root) == []


def test_the_source_image_of_a_running_job_is_not_touched(agent, app_context):
    image = agent.images["/zdm-test/sda1"]
    before = sha256(image)
    run = Run(job_id=agent.job_id, trigger="manual", scheduled_for=utcnow(), state="running")
    db.session.add(run)
    db.session.commit()
    try:
        in_place = hand_made_restore(agent, "/zdm-test/sda1")
        by_path = hand_made_restore(agent, image)
    finally:
        db.session.query(Run).filter_by(id=run.id).update({"state": "failed"})
        db.session.commit()

    assert_refused(
        in_place,
        "A backup run or restore of partition /zdm-test/sda1 is queued or running; restore onto it "
        "in place after it has ended.",
    )
    assert_refused(
        by_path,
        f"Target {image} is where partition /zdm-test/sda1 is served from; to restore onto it in "
        "place, name the partition as the target (admin, overwrite: true).",
    )
    assert sha256(image) == before
    assert leftovers(image.parent) == []


def test_the_agent_checks_the_role_and_overwrite_again(agent, app_context):
    image = agent.images["/zdm-test/sda2"]
    before = sha256(image)
    existing = agent.root / "existing.img"
    existing.write_bytes(b"keep me")

    by_operator = hand_made_restore(agent, "/zdm-test/sda2", requester=agent.operator)
    no_overwrite = hand_made_restore(agent, "/zdm-test/sda2", overwrite=False)
    over_existing = hand_made_restore(agent, existing, overwrite=False, requester=agent.operator)

    assert_refused(by_operator, "Only an admin may restore onto partition /zdm-test/sda2 in place.")
    assert_refused(
        no_overwrite,
        "Restoring onto partition /zdm-test/sda2 in place replaces its data: set overwrite to true.",
    )
    assert_refused(
        over_existing, f"Target {existing} already exists; set overwrite to true to replace it."
    )
    assert sha256(image) == before and existing.read_bytes() == b"keep me"


def test_a_directory_other_users_can_change_is_not_written_through(agent, app_context):
    shared = agent.root / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # anyone could swap a symbolic link in while the agent writes

    restore = hand_made_restore(agent, shared / "sda1.img")

    assert_refused(
        restore,
        f"Directory {shared} on the way to target {shared}/sda1.img can be changed by users "
        "other than root and the agent; restore into directories only they can change.",
    )
    assert list(shared.iterdir()) == []


# ---- allowed -----------------------------------------------------------------------------------


def test_a_restore_under_the_root_is_byte_identical(agent, app_context):
    client = agent.app.test_client()
    target = agent.root / "sda1" / "restored.img"
    target.parent.mkdir()
    headers = bearer(db.session.get(User, agent.operator))

    response = client.post(
        "/api/v1/restores",
        json={"recoveryPoint": agent.point_id, "server": SERVER, "target": str(target)},
        headers=headers,
    )

    assert response.status_code == 202, response.get_data(as_text=True)
    restore = wait_for(response.get_json()["data"]["id"])
    assert (restore.state, restore.error_message, restore.percent) == ("success", None, 100.0)
    assert sha256(target) == agent.original
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert leftovers(target.parent) == []


def test_an_admin_restores_a_damaged_partition_in_place(agent, app_context):
    image = agent.images["/zdm-test/sda1"]
    with open(image, "r+b") as damaged:
        damaged.write(b"\0" * 4096)
    assert sha256(image) != agent.original

    restore = hand_made_restore(agent, "/zdm-test/sda1")

    assert (restore.state, restore.error_message) == ("success", None)
    assert any(line.endswith(f"to /zdm-test/sda1 ({image})") for line in restore.log), restore.log
    assert sha256(image) == agent.original
