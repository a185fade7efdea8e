"""A backup told to distrust the objects a verify found damaged or missing stores their blocks
again instead of building on the damage (see test_verify.py for how verify names them)."""

import os

import pytest

from tests.workers.engine.helpers import (
    BLOCK,
    MIB,
    damage_object,
    plain_object_id,
    sha256,
    write_image,
)
from workers.engine import DataCorrupted, InvalidArgument, backup, restore, verify


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
