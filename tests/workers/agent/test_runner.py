"""What an agent does with a run, in-process: real engine, real files, real database."""

import json
import os
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

import workers.agent.lease
import workers.agent.runner
from app.extensions import db
from app.models import RecoveryPoint, Restore, Run
from app.services import dispatch
from app.timeutil import utcnow
from tests.jobs import _body, every_minute, later, runs_of
from tests.workers.control.test_mail import inbox  # noqa: F401 (a fixture: a real SMTP server)
from tests.workers.control.test_sweep import SHORT_LEASE, short_lease  # noqa: F401 (a fixture)
from tests.workers.engine.helpers import forge_plain_point, write_image
from workers import engine
from workers.agent.runner import run_backup, run_restore
from workers.agent.settings import parse_partitions
from workers.beat.scheduler import fire_due_jobs
from workers.control.mail import notify_run_finished
from workers.control.sweeps import sweep
from workers.engine.locks import RepositoryLock
from workers.engine.repository import RepositoryDir


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


def test_rotation_forgets_exactly_the_points_it_removed(register, agent_env, broker):
    """Another point file in the repository is unreadable: prune cannot collect garbage, but
    the old point it removed is gone from the database too, and the new one stays."""
    run = queued_run(register, agent_env, rotation=1)
    job = run.job
    run_backup(run.id)
    broken = agent_env["repository"] / "points" / "20200101T000000Z-0badf0"
    broken.write_bytes(b"not a point file")
    db.session.refresh(job)
    second = fire_due_jobs(later(job))[0]

    assert run_backup(second.id) == "success"

    db.session.expire_all()
    recorded = [(p.run_id, p.engine_id) for p in db.session.query(RecoveryPoint).all()]
    on_disk = [p.id for p in engine.list_points(agent_env["repository"], job.engine_job)]
    assert [engine_id for _, engine_id in recorded] == on_disk
    assert [run_id for run_id, _ in recorded] == [second.id]
    log = db.session.get(Run, second.id).log
    assert "rotation removed 1 old recovery points" in log[-2]
    assert log[-1].endswith(
        "rotation: Point file 20200101T000000Z-0badf0 is unreadable, so prune cannot tell "
        "which packs it needs and deleted no packs (Point file 20200101T000000Z-0badf0 is "
        "truncated)."
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


def point_file(agent_env, point: RecoveryPoint):
    return agent_env["repository"] / "points" / point.engine_id


def restore_of(point: RecoveryPoint, target) -> int:
    restore = Restore(
        recovery_point=point, server_id=point.server_id, target=str(target), state="queued"
    )
    db.session.add(restore)
    db.session.commit()
    return restore.id


def test_the_point_digest_is_recorded(register, agent_env, broker):
    run = queued_run(register, agent_env)
    run_backup(run.id)

    point = db.session.query(RecoveryPoint).one()
    assert point.digest == point_file(agent_env, point).read_bytes()[-32:].hex()


@pytest.mark.parametrize(
    ("recorded", "refusal"),
    [
        (True, "does not match the digest recorded when it was made (replaced or tampered)."),
        (False, "must be encrypted (its job is), but its file says it is not (replaced or "
                "tampered)."),
    ],
    ids=["digest-recorded", "made-before-digests"],
)  # fmt: skip
def test_a_replaced_point_file_is_refused_and_the_target_is_not_written(
    register, agent_env, broker, monkeypatch, tmp_path, recorded, refusal
):
    monkeypatch.setenv("ZDM_MASTER_KEY", engine.generate_master_key())
    monkeypatch.setenv("ZDM_RESTORE_ROOTS", str(tmp_path))
    assert run_backup(queued_run(register, agent_env, encryption="aes256").id) == "success"
    point = db.session.query(RecoveryPoint).one()
    if not recorded:
        point.digest = None
        db.session.commit()
    attacker = write_image(tmp_path / "attacker.img", 1024 * 1024, seed=13)
    forge_plain_point(agent_env["repository"], point.engine_id, attacker)
    target = tmp_path / "restored.img"

    assert run_restore(restore_of(point, target)) == "failed"

    restore = db.session.query(Restore).one()
    assert restore.error_message == f"Recovery point {point.engine_id} {refusal}"
    assert not target.exists()


def run_while_sweeping(app, run: Run, seconds: float = 60) -> tuple[str, list]:
    """Run the backup as the agent does, in its own thread, while this thread plays the
    control worker: it looks at the run's heartbeat and sweeps for lost runs, every 0.2 s.
    Returns the run's final state and, for each sweep that began while the run was running,
    how long the sweep took and how old the heartbeat was before it."""
    run_id, outcome, seen = run.id, [], []  # the thread must not touch this session's objects

    def agent() -> None:
        with app.app_context():
            outcome.append(run_backup(run_id))

    worker = threading.Thread(target=agent, name="agent")
    worker.start()
    deadline = time.monotonic() + seconds
    while worker.is_alive() and time.monotonic() < deadline:
        db.session.expire_all()
        state, heartbeat = db.session.execute(
            select(Run.state, Run.heartbeat_at).where(Run.id == run_id)
        ).one()
        started = time.monotonic()
        sweep()
        if state == "running":
            seen.append((time.monotonic() - started, (utcnow() - heartbeat).total_seconds()))
        db.session.commit()
        time.sleep(0.2)
    worker.join(timeout=30)
    assert outcome, "the backup did not finish in time"
    return outcome[0], seen


def mail_for_finished_runs(broker) -> list:
    """What the control worker does with the messages in its queue: mail about finished runs."""
    reasons = []
    while (raw := broker.lpop(dispatch.CONTROL_QUEUE)) is not None:
        message = json.loads(raw)
        if message["headers"]["task"] == dispatch.RUN_FINISHED_TASK:
            reasons.append(notify_run_finished(json.loads(_body(message))[1]["run_id"]))
    return reasons


@pytest.mark.usefixtures("short_lease")
def test_a_rotation_waiting_for_the_repository_lock_keeps_the_lease(
    register, agent_env, broker, app, request, monkeypatch
):
    mailbox = request.getfixturevalue("inbox")  # a real SMTP server on loopback
    first = queued_run(register, agent_env, rotation=1, mailEvent="ops@example.com")
    job = first.job
    assert run_backup(first.id) == "success"
    real_prune, waited = engine.prune, []

    def prune_while_another_holds_the_repository(repository, *args, **kwargs):
        holder = RepositoryLock(RepositoryDir.open(repository).root)
        holder.exclusive()  # as a long prune of another job would, for three leases
        threading.Timer(3 * SHORT_LEASE, lambda: (holder.release(), holder.close())).start()
        started = time.monotonic()
        report = real_prune(repository, *args, **kwargs)
        waited.append(time.monotonic() - started)
        return report

    monkeypatch.setattr(engine, "prune", prune_while_another_holds_the_repository)
    db.session.refresh(job)
    second = fire_due_jobs(later(job))[0]

    state, seen = run_while_sweeping(app, second)

    assert state == "success" and waited[0] > 2 * SHORT_LEASE
    # all along, the sweeper was never held up and the heartbeat stayed within the lease
    assert max(took for took, _ in seen) < SHORT_LEASE
    assert max(age for _, age in seen) < SHORT_LEASE
    assert len(seen) > 10
    assert [(r.id, r.state) for r in runs_of(job.id)] == [(first.id, "success"),
                                                          (second.id, "success")]  # fmt: skip
    assert [p.run_id for p in db.session.query(RecoveryPoint).all()] == [second.id]
    assert mail_for_finished_runs(broker) == [None, None]
    assert mailbox.messages == []


@pytest.mark.parametrize("skew", [timedelta(hours=-3), timedelta(hours=3)], ids=["behind", "ahead"])
@pytest.mark.usefixtures("short_lease")
def test_an_agent_with_a_skewed_clock_is_not_lost_while_it_heartbeats(
    register, agent_env, broker, app, monkeypatch, tmp_path, skew
):
    image = tmp_path / "slow.img"
    image.write_bytes(os.urandom(512 * 1024) + bytes(512 * 1024))
    monkeypatch.setenv("ZDM_AGENT_PARTITIONS", f"/dev/sda1={image}")
    for module in (workers.agent.runner, workers.agent.lease):
        monkeypatch.setattr(module, "utcnow", lambda: utcnow() + skew, raising=False)
    run = queued_run(register, agent_env, networkLimit=1)  # 1 Mbit/s: about 4 s, two leases
    started = time.monotonic()

    state, seen = run_while_sweeping(app, run)

    assert state == "success" and len(seen) > 5

    assert time.monotonic() - started > 2 * SHORT_LEASE
    assert [r.state for r in runs_of(run.job_id)] == ["success"]


def watch_row(app, table, row_id: int, columns: list[str], stop: threading.Event) -> list[dict]:
    """Samples of a row's columns every 0.1 s, read in a thread with its own connection, as
    the API would read them, until `stop` is set."""
    samples: list[dict] = []

    def watch() -> None:
        with app.app_context():
            while not stop.wait(0.1):
                with db.engine.connect() as conn:
                    row = conn.execute(
                        select(*(table.c[c] for c in columns)).where(table.c.id == row_id)
                    ).one()
                samples.append(dict(zip(columns, row, strict=True)))

    thread = threading.Thread(target=watch, name="watcher")
    thread.start()
    samples.append(thread)  # joined by the caller through `finish_watching`
    return samples


def finish_watching(samples: list, stop: threading.Event) -> list[dict]:
    stop.set()
    samples.pop(0).join(timeout=10)
    return samples


@pytest.mark.usefixtures("short_lease")
def test_progress_is_the_engines_while_running_and_when_done(
    register, agent_env, broker, app, monkeypatch, tmp_path
):
    """bytesRead and bytesWritten both move while the run goes on, percent follows them and
    speed is the current one (about the network limit); once done, the totals are the
    engine's and the speed its average. A restore shows the point's size as its total."""
    size = 24 * 1024 * 1024
    agent_env["image"].write_bytes(os.urandom(size))  # incompressible: every byte is written
    run = queued_run(register, agent_env, networkLimit=64)  # 8 MB/s: ~3 s
    columns = ["state", "bytes_read", "bytes_written", "bytes_total", "percent", "speed"]
    stop = threading.Event()
    samples = watch_row(app, Run.__table__, run.id, columns, stop)

    assert run_backup(run.id) == "success"
    samples = finish_watching(samples, stop)

    running = [s for s in samples if s["state"] == "running" and s["bytes_total"]]
    assert len({s["bytes_read"] for s in running}) >= 3
    assert len({s["bytes_written"] for s in running if s["bytes_written"] > 0}) >= 3
    for sample in running:
        assert sample["bytes_total"] == size
        assert sample["percent"] == pytest.approx(100 * sample["bytes_read"] / size)
        assert sample["bytes_written"] <= sample["bytes_read"] + 64 * 1024
    limit = 64 * 1_000_000 / 8
    # past the first 2 s (the speed's window), before the last blocks in flight (4 MiB)
    late = [s for s in running if size / 2 < s["bytes_read"] < size - 4 * 1024 * 1024]
    assert late and all(0.4 * limit < s["speed"] < 1.6 * limit for s in late), late

    db.session.expire_all()
    done = db.session.get(Run, run.id)
    point = db.session.query(RecoveryPoint).one()
    assert (done.bytes_read, done.bytes_total, done.percent) == (size, point.source_size, 100.0)
    assert point.stored_size < done.bytes_written < point.stored_size + 64 * 1024  # + point file
    took = (done.finished_at - done.started_at).total_seconds()
    assert size / took <= done.speed < 1.5 * size / took  # the engine's part of the run

    monkeypatch.setenv("ZDM_RESTORE_ROOTS", str(tmp_path))
    restore_id = restore_of(point, tmp_path / "restored.img")
    assert run_restore(restore_id) == "success"
    restore = db.session.get(Restore, restore_id)
    assert (restore.bytes_restored, restore.bytes_total, restore.percent) == (size, size, 100.0)
    took = (restore.finished_at - restore.started_at).total_seconds()
    assert restore.speed >= size / took


def test_an_agent_holding_another_key_refuses_an_encrypted_point_and_writes_nothing(
    register, agent_env, broker, monkeypatch, tmp_path
):
    first, second = engine.generate_master_key(), engine.generate_master_key()
    monkeypatch.setenv("ZDM_MASTER_KEY", first)
    monkeypatch.setenv("ZDM_RESTORE_ROOTS", str(tmp_path))
    assert run_backup(queued_run(register, agent_env, encryption="aes256").id) == "success"
    point = db.session.query(RecoveryPoint).one()
    assert point.key_fingerprint == engine.configured_key_fingerprint(first)
    monkeypatch.setenv("ZDM_MASTER_KEY", second)  # the agent now holds another key
    target = tmp_path / "restored.img"

    assert run_restore(restore_of(point, target)) == "failed"

    restore = db.session.query(Restore).one()
    assert restore.error_message == (
        f"recovery point {point.id} was encrypted with the master key {point.key_fingerprint} "
        f"and this agent holds another ({engine.configured_key_fingerprint(second)}); "
        "nothing was written"
    )
    assert not target.exists()
    monkeypatch.setenv("ZDM_MASTER_KEY", first)
    assert run_restore(restore_of(point, target)) == "success"
    assert target.read_bytes() == agent_env["image"].read_bytes()


def test_a_backup_that_finishes_after_its_run_was_declared_lost_leaves_no_point(
    register, agent_env, broker, app
):
    """While the database was out of reach, the sweep declared the run lost and queued a
    retry; the engine finished all the same. Its point must not be recorded on the failed
    run, nor stay on disk without a record: it is removed (issue 11)."""
    from workers.control.sweeps import WORKER_LOST

    run = queued_run(register, agent_env, networkLimit=4)  # 1 MiB at 4 Mbit/s: about 2 s
    run_id, engine_job, outcome = run.id, run.job.engine_job, []
    # the agent renews its lease (and would see the loss) every 5 s: after the engine is done

    def agent() -> None:
        with app.app_context():
            outcome.append(run_backup(run_id))

    worker = threading.Thread(target=agent, name="agent")
    worker.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # as the sweep does, once the run is running
        db.session.expire_all()
        if db.session.get(Run, run_id).state == "running":
            break
        time.sleep(0.05)
    db.session.query(Run).filter(Run.id == run_id).update(
        {"state": "failed", "error_message": WORKER_LOST, "finished_at": utcnow()}
    )
    db.session.commit()
    worker.join(timeout=30)

    assert outcome == ["failed"]
    db.session.expire_all()
    run = db.session.get(Run, run_id)
    assert (run.state, run.error_message) == ("failed", WORKER_LOST)
    assert "the backup finished after the run was declared lost; its point" in run.log[-1]
    assert "was removed" in run.log[-1]
    assert db.session.query(RecoveryPoint).count() == 0
    assert engine.list_points(str(agent_env["repository"]), engine_job) == []


def _two_points_then_the_oldest_file_gone(register, agent_env):
    first = queued_run(register, agent_env, rotation=5)
    job = first.job
    assert run_backup(first.id) == "success"
    db.session.refresh(job)
    assert run_backup(fire_due_jobs(later(job))[0].id) == "success"
    oldest = db.session.query(RecoveryPoint).order_by(RecoveryPoint.id).first().engine_id
    (agent_env["repository"] / "points" / oldest).unlink()
    db.session.refresh(job)
    return job, oldest


def test_a_point_an_interrupted_rotation_removed_is_forgotten_not_shown_missing(
    register, agent_env, broker
):
    """An agent killed after prune deleted a point file and before the database forgot it
    (chaos found it): the next rotation, which would remove that point anyway, forgets it."""
    job, oldest = _two_points_then_the_oldest_file_gone(register, agent_env)
    job.rotation = 1
    db.session.commit()
    third = fire_due_jobs(later(job))[0]

    assert run_backup(third.id) == "success"

    db.session.expire_all()
    assert [(p.run_id, p.state) for p in db.session.query(RecoveryPoint).all()] == [
        (third.id, "available")
    ]
    log = db.session.get(Run, third.id).log
    assert any(f"already removed ({oldest})" in line for line in log)


def test_a_point_gone_inside_the_kept_window_is_shown_missing(register, agent_env, broker):
    job, oldest = _two_points_then_the_oldest_file_gone(register, agent_env)
    third = fire_due_jobs(later(job))[0]

    assert run_backup(third.id) == "success"

    db.session.expire_all()
    states = {p.engine_id: p.state for p in db.session.query(RecoveryPoint).all()}
    assert len(states) == 3 and states[oldest] == "missing"
