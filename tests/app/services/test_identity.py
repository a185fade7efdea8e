"""Identity (SPEC "The rest of /api/v1/backups"): a deleted job's id is never handed to a new
job, and no later job reads, extends or prunes its points. Real engine, files and database."""

import os

import pytest
from sqlalchemy import text

from app.extensions import db
from app.models import BackupJob, RecoveryPoint, Restore, Run
from app.services.run_commands import request_restore
from tests.jobs import every_minute, later
from workers import engine
from workers.agent.runner import run_backup, run_restore
from workers.beat.scheduler import fire_due_jobs


@pytest.fixture
def agent_env(tmp_path, monkeypatch, app, seed_inventory):
    """An agent serving /dev/sda1 and /dev/sda2 as two different image files."""
    images = {}
    for name in ("sda1", "sda2"):
        images[name] = tmp_path / f"{name}.img"
        images[name].write_bytes(os.urandom(256 * 1024) + bytes(256 * 1024))
    repository = tmp_path / "repo"
    seed_inventory["repository"].path = str(repository)
    db.session.commit()
    restores = tmp_path / "restores"
    restores.mkdir()
    monkeypatch.setenv("ZDM_AGENT_SERVER", "web-server-01")
    monkeypatch.setenv(
        "ZDM_AGENT_PARTITIONS", f"/dev/sda1={images['sda1']},/dev/sda2={images['sda2']}"
    )
    monkeypatch.setenv("ZDM_RESTORE_ROOTS", str(restores))
    monkeypatch.delenv("ZDM_MASTER_KEY", raising=False)
    return {"images": images, "repository": str(repository), "restores": restores}


def register_incremental(register, agent_env, partition: str, **changes) -> BackupJob:
    repository = {"id": 1, "type": "local", "path": agent_env["repository"]}
    return register(type="incremental", partition=[partition], repository=repository,
                    **every_minute(**changes))  # fmt: skip


def back_up(job: BackupJob) -> Run:
    db.session.refresh(job)
    run = fire_due_jobs(later(job))[0]
    assert run_backup(run.id) == "success"
    db.session.expire_all()
    return db.session.get(Run, run.id)


def point_of(run: Run) -> RecoveryPoint:
    return db.session.query(RecoveryPoint).filter_by(run_id=run.id).one()


def test_a_new_job_never_takes_a_deleted_jobs_id_or_points(client, auth, register, agent_env):
    job_a = register_incremental(register, agent_env, "/dev/sda1", jobName="nightly")
    a_id, a_data = job_a.id, job_a.engine_job
    a_point = point_of(back_up(job_a))
    assert client.delete(f"/api/v1/backups/{a_id}", headers=auth).status_code == 200

    job_b = register_incremental(register, agent_env, "/dev/sda2", jobName="nightly", rotation=1)

    assert job_b.id > a_id and job_b.engine_job != a_data
    first = back_up(job_b)
    b_first = engine.list_points(agent_env["repository"], job_b.engine_job)[-1]
    assert (first.mode, b_first.parent) == ("full", None)  # nothing of A's was built on
    second = back_up(job_b)  # rotation 1: B's own first point goes
    assert second.mode == "incremental"
    assert [p.id for p in engine.list_points(agent_env["repository"], job_b.engine_job)] == [
        point_of(second).engine_id
    ]
    assert [p.id for p in engine.list_points(agent_env["repository"], a_data)] == [
        a_point.engine_id
    ]
    listed = client.get(f"/api/v1/recovery-points?job={a_id}", headers=auth).get_json()["data"]
    assert [(p["id"], p["job"]["deleted"]) for p in listed["items"]] == [(a_point.id, True)]

    target = agent_env["restores"] / "a.img"
    restore = request_restore(a_point, job_b.server, str(target))
    assert run_restore(restore.id) == "success"
    assert target.read_bytes() == agent_env["images"]["sda1"].read_bytes()


def test_ids_of_jobs_runs_points_and_restores_are_never_reused(client, auth, register, agent_env):
    job = register_incremental(register, agent_env, "/dev/sda1")
    point = point_of(back_up(job))
    target = agent_env["restores"] / "first.img"
    restore = request_restore(point, job.server, str(target))
    first = {"job": job.id, "run": point.run_id, "point": point.id, "restore": restore.id}
    # Rows can go: purge deletes points; older releases deleted jobs and their runs.
    assert client.delete(f"/api/v1/backups/{job.id}?purge=true", headers=auth).status_code == 200
    db.session.execute(text("DELETE FROM restores"))
    db.session.execute(text("DELETE FROM runs"))
    db.session.execute(text("DELETE FROM backup_jobs"))
    db.session.commit()

    again = register_incremental(register, agent_env, "/dev/sda1")
    point = point_of(back_up(again))
    restore = request_restore(point, again.server, str(agent_env["restores"] / "second.img"))

    now = {"job": again.id, "run": point.run_id, "point": point.id, "restore": restore.id}
    assert all(now[kind] > first[kind] for kind in first), (first, now)
    assert db.session.get(Restore, restore.id).recovery_point_id == point.id
