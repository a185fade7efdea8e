"""What an agent does with a run, in-process: real engine, real files, real database."""

import os

import pytest

from app.extensions import db
from app.models import RecoveryPoint, Run
from tests.scheduling.conftest import every_minute, later
from workers.agent import parse_partitions
from workers.runner import run_backup
from workers.scheduler import fire_due_jobs


@pytest.fixture
def agent_env(tmp_path, monkeypatch, app, seed_inventory):
    image = tmp_path / "sda1.img"
    image.write_bytes(os.urandom(256 * 1024) + bytes(768 * 1024))
    repository = tmp_path / "repo"
    seed_inventory["repository"].path = str(repository)
    db.session.commit()
    monkeypatch.setenv("ZDM_AGENT_SERVER", "web-server-01")
    monkeypatch.setenv("ZDM_AGENT_PARTITIONS", f"/dev/sda1={image}")
    monkeypatch.delenv("ZDM_MASTER_KEY", raising=False)
    return {"image": image, "repository": repository}


def queued_run(register, agent_env, **changes):
    job = register(repository={"id": 1, "type": "local", "path": str(agent_env["repository"])},
                   **every_minute(**changes))  # fmt: skip
    return fire_due_jobs(later(job))[0]


def test_run_backs_up_records_a_point_and_tells_the_control_worker(register, agent_env, broker):
    run = queued_run(register, agent_env, compression="gzip")

    assert run_backup(run.id) == "success"

    db.session.expire_all()
    run = db.session.get(Run, run.id)
    assert (run.state, run.mode, run.percent, run.bytes_read) == (
        "success",
        "full",
        100.0,
        1024 * 1024,
    )
    point = db.session.query(RecoveryPoint).one()
    assert (point.run_id, point.compression, point.source_size) == (run.id, "gzip", 1024 * 1024)
    assert point.stored_size < 512 * 1024  # the zero tail cost almost nothing
    assert broker.llen("zdm.control") == 1
    assert run.job.status == "scheduled"


def test_a_redelivered_message_does_not_run_twice(register, agent_env, broker):
    run = queued_run(register, agent_env)
    run_backup(run.id)

    assert run_backup(run.id) == "ignored"
    assert db.session.query(RecoveryPoint).count() == 1


def test_partition_this_agent_does_not_serve_fails_clearly(
    register, agent_env, broker, monkeypatch
):
    monkeypatch.setenv("ZDM_AGENT_PARTITIONS", "/dev/sdb1=/nonexistent")
    run = queued_run(register, agent_env)

    assert run_backup(run.id) == "failed"

    db.session.expire_all()
    assert "/dev/sda1 is not served by this agent" in db.session.get(Run, run.id).error_message


def test_encrypted_job_without_master_key_fails_with_a_clear_message(register, agent_env, broker):
    run = queued_run(register, agent_env, encryption="aes256")

    assert run_backup(run.id) == "failed"

    db.session.expire_all()
    message = db.session.get(Run, run.id).error_message
    assert "ZDM_MASTER_KEY" in message
    assert db.session.query(RecoveryPoint).count() == 0


def test_encrypted_job_with_master_key_succeeds(register, agent_env, broker, monkeypatch):
    from workers.engine import generate_master_key

    monkeypatch.setenv("ZDM_MASTER_KEY", generate_master_key())
    run = queued_run(register, agent_env, encryption="aes256")

    assert run_backup(run.id) == "success"
    assert db.session.query(RecoveryPoint).one().encrypted is True


def test_rotation_keeps_the_newest_points(register, agent_env, broker):
    run = queued_run(register, agent_env, rotation=2)
    job = run.job
    run_backup(run.id)
    for _ in range(2):
        db.session.refresh(job)
        run_backup(fire_due_jobs(later(job))[0].id)

    points = db.session.query(RecoveryPoint).order_by(RecoveryPoint.id).all()
    assert len(points) == 2 and points[0].run_id > run.id
    assert (
        "rotation removed 1 old recovery points" in db.session.get(Run, points[-1].run_id).log[-1]
    )


def test_partition_settings_parse_and_refuse_garbage(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "disk.img").write_bytes(b"x" * 4096)

    served = parse_partitions(f"/dev/sda1={tmp_path / 'disk.img'}, /data={tmp_path / 'data'}")

    assert [(p.name, p.kind, p.size) for p in served] == [
        ("/dev/sda1", "block", 4096),
        ("/data", "directory", None),
    ]
    with pytest.raises(ValueError, match="name=path"):
        parse_partitions("/dev/sda1")
