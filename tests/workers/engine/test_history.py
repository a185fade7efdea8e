"""The order of a job's points comes from their sequence numbers, never from a clock: a clock
stepped back changes neither what rotation keeps nor which point an incremental builds on."""

import importlib
import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.workers.engine.helpers import rewrite_point, scatter_writes, sha256, write_image
from workers.engine import backup, list_points, prune, restore, verify

MIB = 1024 * 1024


@pytest.fixture
def clock(monkeypatch):
    """The engine's clock, set by the test: `clock.now = ...`."""

    class Clock:
        now = datetime.now(UTC)

    # the module (the package's attribute `backup` is the function of that name)
    backup_module = importlib.import_module("workers.engine.backup")
    monkeypatch.setattr(backup_module, "_now", lambda: Clock.now)
    return Clock


def test_rotation_after_a_clock_step_back_keeps_the_point_just_written(image, repo, clock):
    older = backup(repo, "job", image, "full")
    clock.now -= timedelta(days=1)  # the agent's clock is stepped back (NTP, a dead RTC, ...)
    newer = backup(repo, "job", image, "full")

    report = prune(repo, "job", keep=1)

    assert (report.kept, report.removed_points) == ([newer.point_id], [older.point_id])
    assert [p.id for p in list_points(repo, "job")] == [newer.point_id]
    assert (older.sequence, newer.sequence) == (1, 2)


def test_an_incremental_builds_on_the_newest_point_by_sequence(tmp_path, repo, clock):
    source = write_image(tmp_path / "disk.img", 8 * MIB, seed=11)
    backup(repo, "job", source, "full")
    clock.now -= timedelta(hours=5)
    scatter_writes(source, 3)
    second = backup(repo, "job", source, "full")
    clock.now += timedelta(minutes=1)  # still before the first point's time

    third = backup(repo, "job", source, "incremental")

    assert (third.mode, third.parent) == ("incremental", second.point_id)
    assert third.sequence == 3
    assert third.objects_written == 0  # nothing changed since its true parent
    restore(repo, third.point_id, tmp_path / "out.img")
    assert sha256(tmp_path / "out.img") == sha256(source)


@pytest.mark.parametrize("moment", [datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),
                                    datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)])  # fmt: skip
def test_point_ids_are_well_formed_whatever_year_the_clock_says(image, repo, clock, moment):
    clock.now = moment
    made = [backup(repo, "job", image, "full").point_id for _ in range(2)]

    assert all(re.fullmatch(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}", point) for point in made)
    assert made[0] != made[1]  # the same second twice: still two points
    assert [p.id for p in list_points(repo, "job")] == made
    assert verify(repo, made[1]).ok


def test_points_made_before_sequences_come_first(image, repo):
    legacy = backup(repo, "job", image, "full").point_id
    path = repo / "points" / legacy
    # as written by the engine before sequences existed, with a start time in the future
    rewrite_point(path, path, sequence=None, created_at="2099-01-01T00:00:00.000Z")

    newer = backup(repo, "job", image, "incremental")

    assert newer.parent == legacy and newer.sequence == 1
    assert [(p.id, p.sequence) for p in list_points(repo, "job")] == [
        (legacy, 0),
        (newer.point_id, 1),
    ]
    assert prune(repo, "job", keep=1).removed_points == [legacy]
