"""Incremental points store only changed blocks; fulls stand alone; zeros are nearly free."""

import os

from tests.workers.engine.helpers import BLOCK, MIB, packs_size, scatter_writes, sha256, write_image
from workers.engine import backup, list_points, prune, restore, verify
from workers.engine.objects import RECORD_PREFIX


def test_incremental_stores_only_the_changed_blocks(tmp_path, repo):
    source = write_image(tmp_path / "disk.img", 16 * MIB, seed=5)
    backup(repo, "job", source, "full")
    before = packs_size(repo)
    changed = scatter_writes(source, 4)
    result = backup(repo, "job", source, "incremental")

    growth = packs_size(repo) - before
    assert result.mode == "incremental"
    assert result.objects_written == len(changed)
    # uncompressed: each changed block costs one block plus its record prefix; each new pack
    # (one per worker thread at most) an 8-byte header
    assert result.stored_size == len(changed) * (BLOCK + RECORD_PREFIX)
    assert 0 < growth - result.stored_size <= 8 * 4


def test_full_stores_everything_again_and_stands_alone(tmp_path, repo):
    source = write_image(tmp_path / "disk.img", 8 * MIB, seed=6)
    first = backup(repo, "job", source, "full", compression="lz4")
    second = backup(repo, "job", source, "full", compression="lz4")
    assert second.reused_blocks == 0 and second.stored_size == first.stored_size

    # the full survives the deletion of everything that came before it
    report = prune(repo, "job", keep=1)
    assert report.removed_points == [first.point_id] and report.removed_packs >= 1
    target = tmp_path / "restored.img"
    restore(repo, second.point_id, target)
    assert sha256(target) == sha256(source)


def test_incremental_without_a_parent_is_a_full(image, repo):
    result = backup(repo, "job", image, "incremental")
    assert result.mode == "full" and result.parent is None
    other_job = backup(repo, "other", image, "incremental")
    assert other_job.mode == "full"  # another job's points are never a parent


def test_incremental_with_a_damaged_parent_is_a_full(image, repo, tmp_path):
    parent = backup(repo, "job", image, "full")
    point_file = repo / "points" / parent.point_id
    data = bytearray(point_file.read_bytes())
    data[40] ^= 0xFF  # inside the block table
    point_file.write_bytes(bytes(data))

    result = backup(repo, "job", image, "incremental")
    assert result.mode == "full" and result.parent is None
    target = tmp_path / "restored.img"
    restore(repo, result.point_id, target)
    assert sha256(target) == sha256(image)


def test_chain_survives_rotation_that_deletes_the_full(tmp_path, repo):
    source = write_image(tmp_path / "disk.img", 8 * MIB, seed=7)
    expected = {}
    for round_number in range(5):
        if round_number:
            scatter_writes(source, 2, seed=round_number)
        result = backup(repo, "job", source, "incremental", compression="lz4")
        expected[result.point_id] = sha256(source)
        prune(repo, "job", keep=3)

    points = list_points(repo, "job")
    assert len(points) == 3
    assert all(p.mode == "incremental" for p in points)  # the full is gone
    assert verify(repo, read_data=True).ok
    for point in points:
        target = tmp_path / f"{point.id}.img"
        restore(repo, point.id, target)
        assert sha256(target) == expected[point.id]


def test_zero_regions_cost_almost_nothing_and_restore_sparse(tmp_path, repo):
    source = tmp_path / "sparse.img"
    with open(source, "wb") as image:
        image.write(os.urandom(BLOCK))
        image.truncate(64 * MIB)
    result = backup(repo, "job", source, "full")

    assert result.zero_blocks == 64 * MIB // BLOCK - 1
    assert result.stored_size < BLOCK + 4096
    point_file = repo / "points" / result.point_id
    assert point_file.stat().st_size < 16 * 1024  # 64 bytes per block
    target = tmp_path / "restored.img"
    restore(repo, result.point_id, target)
    assert sha256(target) == sha256(source)
    assert target.stat().st_blocks * 512 < 4 * MIB  # holes, not written zeros


def test_restore_replaces_an_existing_target_file(image, repo, tmp_path):
    result = backup(repo, "job", image, "full")
    target = tmp_path / "target.img"
    target.write_bytes(b"\xff" * (9 * MIB))  # longer and non-zero where the image has zeros
    restore(repo, result.point_id, target)
    assert sha256(target) == sha256(image)


def test_changing_compression_or_encryption_starts_over_with_a_full(image, repo, master_key):
    backup(repo, "job", image, "incremental", compression="lz4")
    assert backup(repo, "job", image, "incremental", compression="lz4").mode == "incremental"
    assert backup(repo, "job", image, "incremental", compression="gzip").mode == "full"
    encrypted = backup(repo, "job", image, "incremental", compression="gzip", encryption="aes256")
    assert encrypted.mode == "full" and encrypted.reused_blocks == 0
