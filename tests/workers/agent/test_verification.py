# ruff: noqa: F811  (fixtures imported from sibling modules are parameters here)
"""Verification and reconciliation (SPEC "Trust"): on demand and on a schedule, damage found
on disk is recorded and shown, the next incremental heals it, the jobs' owners get mail, and
the database agrees with what the repository really holds. Real engine, real files, real
database and Redis; the agent's code runs in-process."""

import os
from pathlib import Path

import pytest
from sqlalchemy import delete, event

from app.extensions import db
from app.models import DamagedObject, RecoveryPoint, Repository, Run, Verification
from app.services.verification import fire_due_verifications, set_verify_schedule
from tests.jobs import later, queued_messages
from tests.workers.agent.test_runner import agent_env, queued_run  # noqa: F401 (fixture)
from tests.workers.control.test_mail import inbox  # noqa: F401 (fixture: aiosmtpd on loopback)
from workers import engine
from workers.agent.runner import run_backup
from workers.agent.verification import reconcile_repository, reconcile_server, run_verification
from workers.beat.scheduler import fire_due_jobs
from workers.control.mail import notify_verification_finished

MiB = 1024 * 1024


@pytest.fixture
def backed_up(register, agent_env, broker):
    """An incremental job with one point made by the real engine from a 4 MiB image."""
    agent_env["image"].write_bytes(os.urandom(4 * MiB))
    run = queued_run(register, agent_env, type="incremental", mailEvent="ops@example.com")
    assert run_backup(run.id) == "success"
    broker.delete("zdm.control")
    return run.job


def _packs(repository: Path) -> list[Path]:
    return sorted(p for p in (repository / "packs").rglob("*") if p.is_file())


def _damage_a_pack(repository: Path) -> None:
    pack = _packs(repository)[0]
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of an object
    pack.write_bytes(bytes(data))


def _verify_now(client, auth, read_data=100) -> dict:
    response = client.post(
        "/api/v1/repositories/1/verify", json={"readData": read_data}, headers=auth
    )
    assert response.status_code == 202, response.get_json()
    return response.get_json()["data"]


def test_verify_on_demand_goes_to_an_agent_that_uses_the_repository(
    client, auth, backed_up, broker
):
    data = _verify_now(client, auth, read_data=10)

    assert (data["state"], data["trigger"], data["readData"]) == ("queued", "manual", 10)
    assert data["server"]["name"] == "web-server-01"
    assert data["requestedBy"]["email"] == "admin@example.com"
    [message] = [m for m in queued_messages(broker) if m["task"] == "zdm.repository.verify"]
    assert message["verification_id"] == data["id"]


def test_a_clean_repository_verifies_clean(client, auth, backed_up):
    data = _verify_now(client, auth)

    assert run_verification(data["id"]) == "success"

    shown = client.get(f"/api/v1/repositories/1/verifications/{data['id']}", headers=auth)
    body = shown.get_json()["data"]
    assert (body["state"], body["problems"], body["damagedPoints"]) == ("success", [], [])
    assert body["pointsChecked"] == 1 and body["objectsChecked"] == 8
    assert db.session.get(Repository, 1).last_verified_at is not None


def test_a_damaged_pack_marks_its_points_damaged_and_mails_the_job(
    client,
    auth,
    backed_up,
    agent_env,
    inbox,
):
    _damage_a_pack(agent_env["repository"])
    data = _verify_now(client, auth)

    assert run_verification(data["id"]) == "failed"

    db.session.expire_all()
    verification = db.session.get(Verification, data["id"])
    point = db.session.query(RecoveryPoint).one()
    assert verification.damaged_points == [point.id]
    assert "problems found" in verification.error_message
    assert point.damaged is True
    assert db.session.query(DamagedObject).count() == 1
    assert notify_verification_finished(verification.id) == ["ops@example.com"]
    [(recipients, content)] = inbox.messages
    assert recipients == ["ops@example.com"] and "DAMAGED" in content
    assert f"{point.id} (" in content


def test_a_verification_that_found_damage_is_a_failed_task(client, auth, backed_up, agent_env):
    """What Flower shows: the verify task FAILURE with the verification's error, not SUCCESS
    whatever it found (the task runs as Celery runs it, in this process)."""
    from workers.agent.tasks import verify_repository

    clean = verify_repository.apply(kwargs={"verification_id": _verify_now(client, auth)["id"]})
    assert (clean.state, clean.result) == ("SUCCESS", "success")
    _damage_a_pack(agent_env["repository"])
    data = _verify_now(client, auth)

    result = verify_repository.apply(kwargs={"verification_id": data["id"], "repository_id": 1})

    assert result.state == "FAILURE"
    assert str(result.result) == db.session.get(Verification, data["id"]).error_message
    assert "problems found" in str(result.result)


def test_the_next_incremental_stores_damaged_blocks_again(
    client, auth, backed_up, agent_env, broker
):
    _damage_a_pack(agent_env["repository"])
    run_verification(_verify_now(client, auth)["id"])

    db.session.refresh(backed_up)
    run = fire_due_jobs(later(backed_up))[0]
    assert run_backup(run.id) == "success"

    db.session.expire_all()
    newest = db.session.query(RecoveryPoint).order_by(RecoveryPoint.id.desc()).first()
    assert newest.mode == "incremental" and newest.damaged is False
    assert any("stored again" in line for line in db.session.get(Run, run.id).log)
    report = engine.verify(agent_env["repository"], newest.engine_id, read_data=True)
    assert report.ok, report.problems  # the healed point does not need the damaged object
    target = agent_env["repository"].parent / "restored.img"
    engine.restore(agent_env["repository"], newest.engine_id, target)
    assert target.read_bytes() == agent_env["image"].read_bytes()


def test_verify_schedule_fires_once_per_fire_time(client, auth, backed_up, broker):
    response = client.put(
        "/api/v1/repositories/1",
        json={"verifySchedule": "0 3 * * *", "verifyReadData": 5},
        headers=auth,
    )
    assert response.status_code == 200, response.get_json()
    repository = db.session.get(Repository, 1)
    assert response.get_json()["data"]["verifyNextAt"] is not None
    due = repository.verify_next_at

    started = fire_due_verifications(due)
    again = fire_due_verifications(due)  # a second beat at the same moment

    assert [v.trigger for v in started] == ["schedule"] and again == []
    assert started[0].read_data == 5
    assert db.session.get(Repository, 1).verify_next_at > due


def test_a_bad_verify_schedule_is_refused(client, auth, backed_up):
    response = client.put(
        "/api/v1/repositories/1", json={"verifySchedule": "61 * * * *"}, headers=auth
    )

    assert response.status_code == 422
    assert "verifySchedule" in response.get_json()["detail"]["validationErrors"]


def test_verify_needs_an_agent_that_uses_the_repository(client, auth, seed_inventory, broker):
    response = client.post("/api/v1/repositories/1/verify", json={}, headers=auth)

    assert response.status_code == 409
    assert "agent" in response.get_json()["error"] or "에이전트" in response.get_json()["error"]


def test_a_point_file_deleted_by_hand_is_shown_missing_after_agent_start(
    client, auth, backed_up, agent_env
):
    point = db.session.query(RecoveryPoint).one()
    (agent_env["repository"] / "points" / point.engine_id).unlink()

    reconcile_server(point.server_id)

    db.session.expire_all()
    assert db.session.get(RecoveryPoint, point.id).state == "missing"
    listed = client.get(f"/api/v1/backups/{backed_up.id}/recovery-points", headers=auth)
    assert listed.get_json()["data"]["items"][0]["state"] == "missing"
    refused = client.post(
        "/api/v1/restores",
        json={
            "recoveryPoint": point.id,
            "server": "web-server-01",
            "target": "/var/lib/zdm/restores/x.img",
        },
        headers=auth,
    )
    assert refused.status_code == 409


def test_an_unmounted_repository_marks_nothing_missing(backed_up, agent_env):
    point = db.session.query(RecoveryPoint).one()
    agent_env["repository"].rename(agent_env["repository"].with_name("elsewhere"))

    reconcile_server(point.server_id)

    db.session.expire_all()
    assert db.session.get(RecoveryPoint, point.id).state == "available"


def test_reconcile_leaves_alone_a_point_that_another_agent_forgets_meanwhile(backed_up, agent_env):
    """Two agents share a repository: one reconciles it (after its own rotation) while the
    other's rotation removes a point's file, then its row. Found by bench/chaos.py: the
    reconcile's update of the vanished row raised StaleDataError, so the backup that called
    it never ended `success`; declared lost and retried, its fire time had two points."""
    point = db.session.query(RecoveryPoint).one()
    point_id, repository = point.id, point.repository
    os.unlink(agent_env["repository"] / "points" / point.engine_id)  # the other agent's prune
    forgotten = []

    def forget_after_reading(_conn, _cursor, statement, *_args):
        if (
            not forgotten
            and statement.lstrip().startswith("SELECT")
            and "FROM recovery_points" in statement
        ):
            forgotten.append(point_id)  # the other agent's _forget_points, committed
            with db.engine.begin() as other:
                other.execute(delete(RecoveryPoint).where(RecoveryPoint.id == point_id))

    event.listen(db.engine, "after_cursor_execute", forget_after_reading)
    try:
        changed = reconcile_repository(repository)
    finally:
        event.remove(db.engine, "after_cursor_execute", forget_after_reading)

    assert forgotten == [point_id]
    assert changed == {"missing": [point_id], "available": []}
    db.session.expire_all()
    assert db.session.query(RecoveryPoint).count() == 0


def test_rotation_reconciles_the_repository(register, agent_env, broker):
    run = queued_run(register, agent_env, rotation=1)
    job = run.job
    run_backup(run.id)
    first = db.session.query(RecoveryPoint).one()
    first_id = first.id
    os.unlink(agent_env["repository"] / "points" / first.engine_id)  # gone behind our back
    db.session.refresh(job)

    run_backup(fire_due_jobs(later(job))[0].id)

    db.session.expire_all()
    states = {p.id: p.state for p in db.session.query(RecoveryPoint)}
    # never listed available: rotation (keep 1) would have removed it anyway, so it is
    # forgotten (see test_runner.py, "interrupted rotation")
    assert first_id not in states
    assert list(states.values()) == ["available"]


def test_schedule_set_at_creation(client, auth, seed_inventory):
    response = client.post(
        "/api/v1/repositories",
        json={"center": "CENTER-001", "type": "local", "path": "/backup/other",
              "verifySchedule": "30 4 * * 0"},
        headers=auth,
    )  # fmt: skip

    assert response.status_code == 201, response.get_json()
    repository = db.session.get(Repository, response.get_json()["data"]["id"])
    set_verify_schedule(repository, None, 0)
    assert repository.verify_next_at is None
