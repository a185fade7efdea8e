"""An agent that starts reconciles its repositories with the database (SPEC "Trust"): a point
file deleted by hand while no agent ran is shown `missing` once the real agent process is up;
the points whose files are there stay `available`."""

import os

import pytest

import config
from app import create_app
from app.extensions import db
from app.models import BackupJob, Center, Partition, RecoveryPoint, Repository, Server
from tests.conftest import make_user
from tests.end_to_end.processes import Process, celery, flask_cli, service_env, wait_until
from workers import engine

pytestmark = pytest.mark.slow

SERVER = "reconcile-agent-01"


def _record(job: BackupJob, result) -> RecoveryPoint:
    point = RecoveryPoint(
        engine_id=result.point_id, job_id=job.id, repository_id=job.repository_id,
        server_id=job.server_id, partition_name="/zdm-test/sda1", partition_kind="block",
        engine_job=job.engine_job, mode=result.mode, source_size=result.source_size,
        stored_size=result.stored_size, digest=result.digest,
    )  # fmt: skip
    db.session.add(point)
    return point


def test_a_point_deleted_by_hand_is_missing_once_the_agent_starts(
    fresh_database_url, redis_url, tmp_path
):
    image, repository = tmp_path / "sda1.img", tmp_path / "repository"
    image.write_bytes(os.urandom(1024 * 1024))
    env = service_env(
        fresh_database_url, tmp_path, redis_url,
        ZDM_AGENT_CENTER="CENTER-001", ZDM_AGENT_SERVER=SERVER,
        ZDM_AGENT_PARTITIONS=f"/zdm-test/sda1={image}",
    )  # fmt: skip
    assert flask_cli(env, "zdm", "init").returncode == 0

    class Settings(config.Config):
        SQLALCHEMY_DATABASE_URI = fresh_database_url
        REDIS_URL = redis_url

    app = create_app(Settings)
    with app.app_context():
        center = Center(name="CENTER-001")
        server = Server(name=SERVER, center=center)
        server.partitions = [Partition(name="/zdm-test/sda1", kind="block")]
        repo = Repository(center=center, type="local", path=str(repository))
        job = BackupJob(name="nightly", server=server, partition=server.partitions[0],
                        repository=repo, user=make_user(), mode="full", schedule_type="daily",
                        schedule_expr="0 2 * * *", timezone="UTC", status="waiting")  # fmt: skip
        db.session.add_all([center, server, repo, job])
        db.session.commit()
        kept = _record(job, engine.backup(repository, job.engine_job, image))
        gone = _record(job, engine.backup(repository, job.engine_job, image))
        db.session.commit()
        kept_id, gone_id = kept.id, gone.id
        os.unlink(repository / "points" / gone.engine_id)  # while no agent runs

        (tmp_path / "logs").mkdir()
        agent = Process(
            "agent",
            celery("worker", "-Q", f"zdm.server.{SERVER}", "-n", "reconcile@%h", "-c", "1",
                   "--without-mingle", "--without-gossip", "-l", "INFO"),
            env, tmp_path / "logs",
        )  # fmt: skip
        try:

            def states():
                db.session.remove()
                return {p.id: p.state for p in db.session.query(RecoveryPoint)}

            wait_until(lambda: states()[gone_id] == "missing", 60, what="reconciliation")
            assert states() == {kept_id: "available", gone_id: "missing"}
        except BaseException:
            print(agent.tail())
            raise
        finally:
            agent.stop()
