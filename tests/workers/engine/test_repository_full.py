"""A repository on a real file system that fills up or turns read-only (issue 11): the operation
fails saying so and naming the repository, nothing half-written is visible, earlier points stay
intact, a failed backup gives its space back at once, and once there is space again (or the
file system is writable again) the next backup succeeds. Restoring and verifying need no write,
so they work on a full or read-only repository. Each test mounts its own small tmpfs."""

import os

import pytest

from tests.workers.engine.helpers import MIB, SmallDisk, sha256, write_random
from workers.engine import backup, list_points, point_ids, prune, restore, verify
from workers.engine.errors import StorageError


@pytest.fixture
def disk(tmp_path):
    with SmallDisk.mount(tmp_path / "disk", size_mib=8) as disk:
        yield disk


@pytest.fixture
def small(tmp_path):
    return write_random(tmp_path / "small.img", 2 * MIB)


def restores_identically(repo, point_id, source, target) -> bool:
    restore(repo, point_id, target)
    return sha256(target) == sha256(source)


def test_a_repository_that_fills_up_mid_backup_fails_saying_so_and_heals(disk, small, tmp_path):
    repo = disk.path / "repo"
    big = write_random(tmp_path / "big.img", 12 * MIB)  # more than the disk holds
    first = backup(repo, "job", small).point_id
    free_before = disk.free()

    with pytest.raises(StorageError) as failed:
        backup(repo, "job", big)
    message = str(failed.value)
    assert f"the repository {repo} is full (No space left on device)" in message
    assert "free space, then run again" in message

    # Nothing half-written is visible, the working files are gone, the earlier point is intact.
    assert point_ids(repo) == {first}
    assert os.listdir(repo / "tmp") == []
    report = verify(repo, read_data=True)
    assert report.ok, report.problems
    assert restores_identically(repo, first, small, tmp_path / "first.out")
    # The failed backup gave its space back at once: in a long-lived process (the agent) an
    # unfinished pack's open descriptor used to keep it, so the repository stayed full.
    assert disk.free() >= free_before - MIB
    second = backup(repo, "job", small).point_id

    disk.remount("size=40m")  # space is freed
    third = backup(repo, "job", big).point_id
    assert [p.id for p in list_points(repo, "job")] == [first, second, third]
    assert verify(repo, read_data=True).ok
    assert restores_identically(repo, third, big, tmp_path / "third.out")


def test_a_read_only_repository_fails_saying_so_and_still_verifies_and_restores(
    disk, small, tmp_path
):
    repo = disk.path / "repo"
    first = backup(repo, "job", small).point_id
    disk.remount("ro")

    with pytest.raises(StorageError) as failed:
        backup(repo, "job", small)
    assert f"the repository {repo} is read-only (Read-only file system)" in str(failed.value)
    # Verify and restore write nothing to the repository: they work read-only.
    report = verify(repo, read_data=True)
    assert report.ok and report.points_checked == 1, report.problems
    assert restores_identically(repo, first, small, tmp_path / "first.out")
    # Rotation cannot run; it says so (an engine error, not an OSError) and removes nothing.
    with pytest.raises(StorageError, match="is read-only"):
        prune(repo, "job", keep=0)
    assert point_ids(repo) == {first}

    disk.remount("rw")
    second = backup(repo, "job", small).point_id
    assert [p.id for p in list_points(repo, "job")] == [first, second]
    assert verify(repo, read_data=True).ok


def test_a_full_repository_still_restores_and_rotation_frees_space(disk, small, tmp_path):
    repo = disk.path / "repo"
    first = backup(repo, "job", small).point_id
    second = backup(repo, "job", small).point_id
    disk.fill()  # someone else's data takes the rest
    assert disk.free() == 0

    assert restores_identically(repo, second, small, tmp_path / "second.out")
    assert verify(repo, read_data=True).ok
    with pytest.raises(StorageError, match="is full"):
        backup(repo, "job", small)
    # Deleting needs no space: rotation runs on a full repository and frees what it removes.
    report = prune(repo, "job", keep=1)
    assert report.removed_points == [first] and report.freed_bytes >= 2 * MIB
    assert point_ids(repo) == {second}
    smaller = write_random(tmp_path / "smaller.img", MIB)  # the freed 2 MiB, less the overhead
    third = backup(repo, "job", smaller).point_id
    assert [p.id for p in list_points(repo, "job")] == [second, third]
    assert verify(repo, read_data=True).ok
