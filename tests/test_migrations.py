"""Upgrading an installation made before jobs had a uuid (revision 8af655ff7c22, "today's
code" before the trust migration): its database rows and a real repository written by the
engine under the old names `job-<id>`.

The installation has lived through SQLite's id reuse: job 2 was deleted without purge (its
point `job-2` kept, `job_id` NULL), and the next job was given id 2 again; job 3 was deleted
the same way and its id is free. After the upgrade, job 1 goes on with its data, job 2 starts
afresh under `job-<uuid>` and never touches the deleted job's point, and no later job gets an
id any point ever named.
"""

import os
import uuid
from datetime import datetime, timedelta

import pytest
from flask_migrate import upgrade
from sqlalchemy import MetaData, text

import config
from app import create_app
from app.auth import issue_token
from app.extensions import db
from app.models import BackupJob, RecoveryPoint, Run, Server, User
from app.services.run_commands import request_restore
from tests.app.api.helpers import body
from workers import engine
from workers.agent.runner import run_backup, run_restore

BEFORE_UUIDS = "8af655ff7c22"
T0 = datetime(2026, 11, 1, 2, 0, 0)


@pytest.fixture
def agent_env(tmp_path, monkeypatch):
    """Partition images: sda1 (job 1), sda2 (job 2 now), and what the deleted jobs saw."""
    images = {}
    for name in ("sda1", "sda2", "deleted2", "deleted3"):
        images[name] = tmp_path / f"{name}.img"
        images[name].write_bytes(os.urandom(192 * 1024) + bytes(320 * 1024))
    restores = tmp_path / "restores"
    restores.mkdir()
    monkeypatch.setenv("ZDM_AGENT_SERVER", "web-server-01")
    monkeypatch.setenv(
        "ZDM_AGENT_PARTITIONS", f"/dev/sda1={images['sda1']},/dev/sda2={images['sda2']}"
    )
    monkeypatch.setenv("ZDM_RESTORE_ROOTS", str(restores))
    monkeypatch.delenv("ZDM_MASTER_KEY", raising=False)
    return {"images": images, "repository": str(tmp_path / "repo"), "restores": restores}


@pytest.fixture
def old_installation(fresh_database_url, redis_url, agent_env):
    """An app on a database of its own at the old revision, filled as the old code did."""

    class Settings(config.Config):
        TESTING = True
        SQLALCHEMY_DATABASE_URI = fresh_database_url
        REDIS_URL = redis_url
        ZDM_REPOSITORY_ROOTS = []

    application = create_app(Settings)
    with application.app_context():
        upgrade(revision=BEFORE_UUIDS)
        points = _old_repository(agent_env)
        _old_rows(agent_env["repository"], points)
        yield application, points
        db.session.remove()
        db.engine.dispose()


def _old_repository(agent_env) -> dict[str, str]:
    """Points as the old runner made them: named `job-<id>` in the repository."""
    repository, images = agent_env["repository"], agent_env["images"]
    return {
        "job-1": engine.backup(repository, "job-1", images["sda1"], mode="full").point_id,
        "job-2": engine.backup(repository, "job-2", images["deleted2"], mode="full").point_id,
        "job-3": engine.backup(repository, "job-3", images["deleted3"], mode="full").point_id,
    }


def _old_rows(repository: str, points: dict[str, str]) -> None:
    tables = MetaData()
    tables.reflect(bind=db.engine)  # the schema of the old revision, not today's models
    rows = {
        "users": [dict(id=1, email="admin@example.com", password_hash="x", role="admin",
                       created_at=T0)],
        "centers": [dict(id=1, name="CENTER-001", created_at=T0)],
        "servers": [dict(id=1, center_id=1, name="web-server-01", online=False, created_at=T0)],
        "partitions": [
            dict(id=1, server_id=1, name="/dev/sda1", kind="block", position=0),
            dict(id=2, server_id=1, name="/dev/sda2", kind="block", position=1),
        ],
        "repositories": [dict(id=1, center_id=1, type="local", path=repository, created_at=T0)],
        "backup_jobs": [_old_job(1, "job-one", partition_id=1, rotation=7),
                        _old_job(2, "job-two", partition_id=2, rotation=1)],
        "runs": [dict(id=1, job_id=1, trigger="schedule", scheduled_for=T0, state="success",
                      queued_at=T0, dispatched_at=T0, started_at=T0, finished_at=T0, mode="full",
                      bytes_total=512 * 1024, bytes_read=512 * 1024, bytes_written=1, percent=100.0,
                      speed=1.0, log=[])],
        "recovery_points": [
            _old_point(1, points["job-1"], "job-1", job_id=1, run_id=1, partition="/dev/sda1"),
            _old_point(2, points["job-2"], "job-2", job_id=None, run_id=None, partition="/dev/sda2"),
            _old_point(3, points["job-3"], "job-3", job_id=None, run_id=None, partition="/dev/sda1"),
        ],
    }  # fmt: skip
    with db.engine.begin() as conn:
        for name, values in rows.items():
            conn.execute(tables.tables[name].insert(), values)
        if conn.dialect.name == "postgresql":
            # The sequences handed those ids out (job 3 too, before it was deleted).
            for name in rows:
                conn.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), :n)"),
                    {"n": 3 if name == "backup_jobs" else len(rows[name])},
                )


def _old_job(job_id: int, name: str, *, partition_id: int, rotation: int) -> dict:
    return dict(id=job_id, name=name, server_id=1, partition_id=partition_id, repository_id=1,
                user_id=1, mode="incremental", encryption="none", rotation=rotation,
                network_limit=0, exclude_dirs=[], schedule_type="daily", schedule_expr="0 2 * * *",
                timezone="UTC", auto_start=True, active=True, status="scheduled",
                next_run_at=T0 + timedelta(days=1), created_at=T0, updated_at=T0)  # fmt: skip


def _old_point(point_id, engine_id, engine_job, *, job_id, run_id, partition) -> dict:
    return dict(id=point_id, engine_id=engine_id, job_id=job_id, run_id=run_id, repository_id=1,
                server_id=1, partition_name=partition, partition_kind="block",
                engine_job=engine_job, mode="full", created_at=T0, source_size=512 * 1024,
                stored_size=1, encrypted=False)  # fmt: skip


def run_now(client, headers, job_id: int) -> Run:
    response = client.post(f"/api/v1/backups/{job_id}/run", headers=headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    run_id = response.get_json()["data"]["runId"]
    assert run_backup(run_id) == "success"
    db.session.expire_all()
    return db.session.get(Run, run_id)


def restored_bytes(point_id: int, target) -> bytes:
    point = db.session.get(RecoveryPoint, point_id)
    restore = request_restore(point, db.session.get(Server, 1), str(target))
    assert run_restore(restore.id) == "success"
    return target.read_bytes()


def test_upgrade_keeps_old_points_and_ends_id_reuse(old_installation, agent_env, broker):
    application, points = old_installation
    repository, images = agent_env["repository"], agent_env["images"]

    upgrade()

    db.session.expire_all()
    jobs = {job.id: job for job in db.session.query(BackupJob)}
    assert sorted(jobs) == [1, 2]
    for job in jobs.values():
        assert str(uuid.UUID(job.uuid)) == job.uuid
        assert job.created_by_id == 1 and job.deleted_at is None
    assert jobs[1].engine_job == "job-1"  # its points already carry that name
    assert jobs[2].engine_job == f"job-{jobs[2].uuid}"  # job-2 is a deleted job's

    client = application.test_client()
    headers = {"Authorization": f"Bearer {issue_token(db.session.get(User, 1))[0]}"}
    listed = client.get("/api/v1/backups/1/recovery-points", headers=headers).get_json()["data"]
    assert [p["id"] for p in listed["items"]] == [1]
    everything = client.get("/api/v1/recovery-points", headers=headers).get_json()["data"]
    assert [(p["id"], p["job"]) for p in everything["items"]] == [
        (3, None),
        (2, None),
        (1, {"id": 1, "name": "job-one", "deleted": False}),
    ]
    assert restored_bytes(1, agent_env["restores"] / "one.img") == images["sda1"].read_bytes()

    # job 1 goes on from its old point
    run = run_now(client, headers, 1)
    newest = engine.list_points(repository, "job-1")[-1]
    assert (run.mode, newest.parent) == ("incremental", points["job-1"])

    # job 2 (rotation 1) starts afresh and never prunes the deleted job's point `job-2`
    first, second = run_now(client, headers, 2), run_now(client, headers, 2)
    assert (first.mode, second.mode) == ("full", "incremental")
    assert [p.id for p in engine.list_points(repository, "job-2")] == [points["job-2"]]
    assert len(engine.list_points(repository, jobs[2].engine_job)) == 1
    assert restored_bytes(2, agent_env["restores"] / "two.img") == images["deleted2"].read_bytes()

    # no new job takes an id that a point ever named (job-3), nor a new run or point an old id
    response = client.post(
        "/api/v1/backups",
        json=body(partition=["/dev/sda1"], jobName="after-upgrade", type="incremental",
                  repository={"id": 1, "type": "local", "path": repository}),
        headers=headers,
    )  # fmt: skip
    assert response.status_code == 201, response.get_data(as_text=True)
    new_id = response.get_json()["data"]["results"][0]["id"]
    assert new_id == 4
    assert db.session.get(BackupJob, new_id).engine_job == (
        f"job-{db.session.get(BackupJob, new_id).uuid}"
    )
    assert run.id > 1 and db.session.query(RecoveryPoint).filter_by(run_id=run.id).one().id > 3
