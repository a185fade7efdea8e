"""A point planted in the repository by someone with write access to it (SPEC "Trust"): the
agent builds only on points the database recorded, with their digests, and its rotation counts
and deletes only those, in the database's order. Real engine, real files, real database."""

# ruff: noqa: F811  (fixtures imported from a sibling module are parameters here)

import os

from app.extensions import db
from app.models import RecoveryPoint, Run
from tests.jobs import later
from tests.workers.agent.test_runner import agent_env, queued_run  # noqa: F401 (fixture)
from tests.workers.engine.helpers import rewrite_point
from workers import engine
from workers.agent.runner import run_backup
from workers.beat.scheduler import fire_due_jobs

MiB = 1024 * 1024


def _plant(repository, genuine: str, planted: str) -> None:
    """A consistent plain point of the same job, claiming to be far newer than any real one."""
    points = repository / "points"
    rewrite_point(points / genuine, points / planted, id=planted, sequence=10**9)


def _next_run(job) -> Run:
    db.session.refresh(job)
    return fire_due_jobs(later(job))[0]


def test_an_incremental_never_builds_on_a_point_the_database_does_not_know(
    register, agent_env, broker
):
    agent_env["image"].write_bytes(os.urandom(2 * MiB))
    first = queued_run(register, agent_env, type="incremental")
    assert run_backup(first.id) == "success"
    genuine = db.session.query(RecoveryPoint).one().engine_id
    _plant(agent_env["repository"], genuine, "20990101T000000Z-bad000")

    second = _next_run(first.job)
    assert run_backup(second.id) == "success"

    db.session.expire_all()
    newest = db.session.query(RecoveryPoint).order_by(RecoveryPoint.id.desc()).first()
    meta = {p.id: p for p in engine.list_points(agent_env["repository"])}[newest.engine_id]
    assert (newest.mode, meta.parent) == ("incremental", genuine)


def test_a_parent_that_does_not_match_its_digest_means_a_full(register, agent_env, broker):
    agent_env["image"].write_bytes(os.urandom(2 * MiB))
    first = queued_run(register, agent_env, type="incremental")
    run_backup(first.id)
    point = db.session.query(RecoveryPoint).one()
    points = agent_env["repository"] / "points"
    rewrite_point(points / point.engine_id, points / "tmp-forged", finished_at="2000-01-01")
    os.replace(points / "tmp-forged", points / point.engine_id)  # consistent, but not ours

    second = _next_run(first.job)
    assert run_backup(second.id) == "success"

    db.session.expire_all()
    newest = db.session.get(Run, second.id)
    assert newest.mode == "full"


def test_rotation_counts_and_deletes_only_recorded_points(register, agent_env, broker):
    agent_env["image"].write_bytes(os.urandom(2 * MiB))
    first = queued_run(register, agent_env, rotation=1)
    run_backup(first.id)
    genuine = db.session.query(RecoveryPoint).one().engine_id
    planted = "20990101T000000Z-bad001"
    _plant(agent_env["repository"], genuine, planted)

    second = _next_run(first.job)
    assert run_backup(second.id) == "success"

    db.session.expire_all()
    kept = [p.engine_id for p in db.session.query(RecoveryPoint)]
    on_disk = {p.id for p in engine.list_points(agent_env["repository"])}
    assert len(kept) == 1 and kept[0] != genuine and kept[0] in on_disk
    assert planted in on_disk  # not ours to delete, and never counted as one of the job's
    assert any("does not know" in line for line in db.session.get(Run, second.id).log)
