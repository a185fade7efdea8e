"""Chaos in CI (issue 11): the whole service for two minutes while a random process is killed -9
every ~20 s (`tests/end_to_end/chaos.py`, the code `bench/chaos.py` runs for ten); and the
checks themselves, fed records that break each rule, so a chaos run that passes means what it
says."""

from datetime import datetime, timedelta

import pytest

from app.services.run_lifecycle import WORKER_LOST
from tests.end_to_end.chaos import (
    ChaosSettings,
    JobPlan,
    PointOnDisk,
    PointRecord,
    RunRecord,
    _sha256,
    check_fire_times,
    check_points,
    check_restores,
    run_chaos,
)
from tests.end_to_end.fault_stack import MiB, make_random_image
from workers import engine

T0 = datetime(2030, 5, 1, 12, 0)
MINUTE = timedelta(minutes=1)


@pytest.mark.slow
@pytest.mark.xdist_group("chaos")
def test_chaos_every_fire_time_ends_once_and_every_point_restores(tmp_path, worker_id):
    settings = ChaosSettings(minutes=2, jobs=12, kill_every=20, seed=1, aim=True, network_limit=8)
    report = run_chaos(tmp_path, settings, worker_id=worker_id)
    print(report.summary())
    assert len(report.kills) >= 3
    assert report.fire_times >= settings.jobs  # every job fired at least once in the window
    assert report.restored == report.points > 0
    assert report.ok, report.summary()


# ---- the checks, fed broken records ---------------------------------------------------------


def job(job_id=1, keeps_all=True, image=None, sha="") -> JobPlan:
    return JobPlan(job_id, f"job-{job_id}", image, sha, T0, keeps_all)


def run(run_id, at, state="success", trigger="schedule", error=None, retry_of=None, job_id=1,
        started=None, finished=None) -> RunRecord:  # fmt: skip
    return RunRecord(run_id, job_id, trigger, at, state, error, retry_of, started, finished)


def test_fire_times_pass_one_outcome_each_with_a_lost_run_retried_and_catch_up_missed():
    runs = [
        run(1, T0),
        run(2, T0 + MINUTE, "failed", error=WORKER_LOST),
        run(3, T0 + MINUTE, "success", trigger="retry", retry_of=2),
        run(4, T0 + 2 * MINUTE, "skipped", error="the previous run was still running"),
        # beat caught up: one missed run names the fire times up to the newest, which runs
        run(
            5,
            T0 + 3 * MINUTE,
            "missed",
            error="beat was late: it reached the 2 fire times from 2030-05-01T12:03:00.000Z only"
            " after 2030-05-01T12:05:00.000Z had passed",
        ),  # fmt: skip
        run(6, T0 + 5 * MINUTE),
        run(7, T0 + 6 * MINUTE, "failed", error="No space left on device"),
    ]
    result = check_fire_times([job()], runs, T0 + 6 * MINUTE)
    assert result.violations == []
    assert result.fire_times == 7 and result.retried == 1
    assert result.outcomes == {"success": 3, "skipped": 1, "missed": 2, "failed": 1}


@pytest.mark.parametrize(
    "runs, says",
    [
        ([run(1, T0)], "fire time 2030-05-01 12:01:00 has no run"),
        ([run(1, T0), run(2, T0 + MINUTE, "running")], "is still running"),
        ([run(1, T0), run(2, T0 + MINUTE, "queued")], "is still queued"),
        ([run(1, T0), run(2, T0 + MINUTE, "failed")], "failed without a reason"),
        ([run(1, T0), run(2, T0 + MINUTE, "canceled", error="canceled by stop")], "ended canceled"),
        # two outcomes for one fire time: a success retried, a lost run retried twice
        (
            [run(1, T0), run(2, T0, trigger="retry", retry_of=1), run(3, T0 + MINUTE)],
            "was retried by [2] though it was not lost",
        ),  # fmt: skip
        (
            [
                run(1, T0, "failed", error=WORKER_LOST),
                run(2, T0, trigger="retry", retry_of=1),
                run(3, T0, trigger="retry", retry_of=1),
                run(4, T0 + MINUTE),
            ],
            "run 1 was retried 2 times",
        ),  # fmt: skip
        ([run(1, T0, "failed", error=WORKER_LOST), run(2, T0 + MINUTE)], "lost and not retried"),
        (
            [run(1, T0), run(2, T0 + MINUTE, trigger="manual"), run(3, T0 + MINUTE)],
            "has trigger 'manual'",
        ),  # fmt: skip
        ([run(1, T0), run(2, T0 + MINUTE + timedelta(seconds=7))], "not a fire time"),
    ],
)
def test_fire_times_fail_on_none_two_or_unfinished(runs, says):
    violations = check_fire_times([job()], runs, T0 + MINUTE).violations
    assert any(says in v for v in violations), violations


def test_points_fail_on_a_point_of_a_failed_run_and_on_disagreement_with_the_repository():
    lost = run(1, T0, "failed", error=WORKER_LOST, started=T0, finished=T0 + 7 * MINUTE / 60)
    runs = [lost, run(2, T0, trigger="retry", retry_of=1), run(3, T0 + MINUTE)]
    points = [PointRecord(10, "p-retry", 1, 2, "available", "d"),
              PointRecord(11, "p-next", 1, 3, "available", "d")]  # fmt: skip
    disk = {p.engine_id: PointOnDisk(p.engine_id, "J", T0 + MINUTE) for p in points}
    assert check_points([job()], runs, points, disk, {1: "J"}) == ([], [])

    # the lost run's backup renamed its point into place before its agent died: a known gap
    orphan = {"p-lost": PointOnDisk("p-lost", "J", T0 + timedelta(seconds=1))}
    violations, gaps = check_points([job()], runs, points, disk | orphan, {1: "J"})
    assert violations == [] and "made by run 1" in gaps[0]
    # an unrecorded point no lost run explains
    stray = {"p-stray": PointOnDisk("p-stray", "J", T0 + 3 * MINUTE)}
    violations, _ = check_points([job()], runs, points, disk | stray, {1: "J"})
    assert "no lost run explains it" in violations[0]
    # the lost run's point recorded as well: the fire time decided twice
    twice = [*points, PointRecord(12, "p-lost", 1, 1, "available", "d")]
    violations, _ = check_points([job()], runs, twice, disk | orphan, {1: "J"})
    assert any("decided twice" in v for v in violations), violations
    # a recorded point the repository lost; a success without its point
    violations, _ = check_points([job()], runs, points, {"p-retry": disk["p-retry"]}, {1: "J"})
    assert any("the repository does not hold: ['p-next']" in v for v in violations)
    violations, _ = check_points([job()], runs, points[:1], disk, {1: "J"})
    assert any("run 3" in v and "has no point" in v for v in violations), violations


def test_restores_fail_when_a_point_does_not_give_back_its_image(tmp_path):
    image = tmp_path / "image.img"
    make_random_image(image, 2 * MiB)
    repository = tmp_path / "repository"
    made = engine.backup(repository, "job-1", image)
    point = PointRecord(1, made.point_id, 1, 1, "available", made.digest)
    plan = job(image=image, sha=_sha256(image))
    assert check_restores(repository, [plan], [point], tmp_path / "scratch") == ([], 1)

    changed = job(image=image, sha="0" * 64)  # the image as it was is not what the point holds
    violations, identical = check_restores(repository, [changed], [point], tmp_path / "scratch")
    assert identical == 0 and "restores different bytes" in violations[0]

    forged = PointRecord(1, made.point_id, 1, 1, "available", "f" * 64)  # not the digest made
    violations, _ = check_restores(repository, [plan], [forged], tmp_path / "scratch")
    assert "does not restore" in violations[0]
