"""Verify names every damaged object and every point that needs it; a backup told to distrust
those objects stores their blocks again instead of building on the damage."""

import os

import pytest

from tests.engine.helpers import (
    BLOCK,
    MIB,
    damage_object,
    plain_object_id,
    run_engine,
    sha256,
    write_image,
)
from workers.engine import DataCorrupted, InvalidArgument, backup, restore, verify


def test_verify_names_each_point_that_needs_a_damaged_object(tmp_path, repo):
    source = write_image(tmp_path / "disk.img", 4 * MIB, seed=21)
    full = backup(repo, "job", source, "full").point_id
    incremental = backup(repo, "job", source, "incremental").point_id  # reuses every block
    block = source.read_bytes()[:BLOCK]
    object_id = plain_object_id(block)
    pack = damage_object(repo, object_id)

    report = verify(repo, read_data=True)

    assert sorted(report.damaged) == sorted(
        [(full, object_id, pack), (incremental, object_id, pack)]
    )
    assert report.unreadable_points == []
    first, second = sorted([full, incremental])  # verify reads the points in name order
    assert report.problems == [
        f"Object {object_id} does not match its id (damaged data) (pack {pack}); "
        f"needed by points {first}, {second}."
    ]


def test_verify_lists_unreadable_point_files(image, repo):
    point = backup(repo, "job", image, "full").point_id
    other = backup(repo, "job", image, "full").point_id
    path = repo / "points" / point
    data = bytearray(path.read_bytes())
    data[20] ^= 0xFF
    path.write_bytes(bytes(data))

    report = verify(repo)

    assert report.unreadable_points == [point] and report.damaged == []
    assert report.points_checked == 1 and other not in " ".join(report.problems)


def test_an_incremental_stores_distrusted_blocks_again(tmp_path, repo):
    source = write_image(tmp_path / "disk.img", 4 * MIB, seed=22)
    backup(repo, "job", source, "full")
    object_id = plain_object_id(source.read_bytes()[BLOCK : 2 * BLOCK])
    damage_object(repo, object_id)

    healed = backup(repo, "job", source, "incremental", distrust=[object_id])

    assert (healed.mode, healed.healed_blocks, healed.objects_written) == ("incremental", 1, 1)
    assert verify(repo, healed.point_id, read_data=True).ok
    restore(repo, healed.point_id, tmp_path / "out.img")
    assert sha256(tmp_path / "out.img") == sha256(source)


def test_without_distrust_the_damage_is_inherited(tmp_path, repo):
    source = write_image(tmp_path / "disk.img", 4 * MIB, seed=22)
    backup(repo, "job", source, "full")
    damage_object(repo, plain_object_id(source.read_bytes()[BLOCK : 2 * BLOCK]))

    inherited = backup(repo, "job", source, "incremental")

    assert (inherited.healed_blocks, inherited.objects_written) == (0, 0)
    with pytest.raises(DataCorrupted):
        restore(repo, inherited.point_id, tmp_path / "out.img")


def test_an_unchanged_file_with_a_distrusted_block_is_read_again(tmp_path, repo):
    source = tmp_path / "src"
    source.mkdir()
    content = os.urandom(BLOCK) + os.urandom(1000)
    (source / "kept.bin").write_bytes(content)
    (source / "other.bin").write_bytes(os.urandom(5000))
    backup(repo, "dir", source, "full")
    object_id = plain_object_id(content[:BLOCK])
    damage_object(repo, object_id)

    healed = backup(repo, "dir", source, "incremental", distrust=[object_id])

    assert healed.healed_blocks == 1 and healed.mode == "incremental"
    assert verify(repo, healed.point_id, read_data=True).ok
    restore(repo, healed.point_id, tmp_path / "out")
    assert (tmp_path / "out" / "kept.bin").read_bytes() == content


def test_distrusted_ids_must_be_object_ids(image, repo):
    with pytest.raises(InvalidArgument, match="hexadecimal"):
        backup(repo, "job", image, "full", distrust=["not-hex"])


def test_read_data_takes_a_percent_of_the_objects(tmp_path, repo):
    source = tmp_path / "random.img"
    source.write_bytes(os.urandom(40 * BLOCK))  # 40 distinct objects
    backup(repo, "job", source, "full")

    assert verify(repo, read_data=0).objects_read == 0
    assert verify(repo, read_data=True).objects_read == 40
    assert verify(repo, read_data=100).objects_read == 40
    sampled = verify(repo, read_data=50)
    assert sampled.objects_checked == 40 and 0 < sampled.objects_read < 40
    with pytest.raises(InvalidArgument, match="percent from 0 to 100"):
        verify(repo, read_data=150)

    done = run_engine("verify", "--repo", repo, "--read-data", "25")
    assert done.returncode == 0 and "checked 1 points and 40 objects (" in done.stdout
