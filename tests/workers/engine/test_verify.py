"""Damaged or missing data is found by verify, which names every point that needs it, and stops a
restore with a message naming it; verify reads in full the share of the objects it is asked to."""

import os
import struct

import pytest

from tests.workers.engine.helpers import (
    BLOCK,
    MIB,
    all_packs,
    damage_object,
    plain_object_id,
    run_engine,
    sha256,
    write_image,
)
from workers.engine import (
    DataCorrupted,
    InvalidArgument,
    ObjectMissing,
    backup,
    restore,
    verify,
)
from workers.engine.objects import RECORD_PREFIX


def _first_record(pack):
    """(object id hex, offset of its payload) of the first record in a pack."""
    data = pack.read_bytes()
    oid = data[8 + 16 : 8 + RECORD_PREFIX].hex()
    return oid, 8 + RECORD_PREFIX


@pytest.fixture(params=[None, "aes256"], ids=["plain", "encrypted"])
def stored(request, image, repo, master_key):
    result = backup(repo, "job", image, "full", compression="lz4", encryption=request.param)
    return result.point_id


def test_flipped_byte_is_found_and_stops_restore(stored, repo, tmp_path):
    pack = all_packs(repo)[0]
    oid, payload_offset = _first_record(pack)
    data = bytearray(pack.read_bytes())
    data[payload_offset + 5] ^= 0x01
    pack.write_bytes(bytes(data))

    assert verify(repo).ok  # sizes and headers are intact: only reading the data tells
    report = verify(repo, read_data=True)
    assert len(report.problems) == 1
    assert oid in report.problems[0] and stored in report.problems[0]

    target = tmp_path / "target.img"
    target.write_bytes(b"old contents")
    with pytest.raises(DataCorrupted) as error:
        restore(repo, stored, target)
    assert oid in str(error.value)
    assert target.read_bytes() == b"old contents"  # a failed restore leaves the target alone
    assert not [p for p in tmp_path.iterdir() if "zdm-restore" in p.name]


def test_deleted_pack_is_found_and_stops_restore(stored, repo, tmp_path):
    pack = all_packs(repo)[0]
    oid, _ = _first_record(pack)
    pack.unlink()

    for read_data in (False, True):
        report = verify(repo, read_data=read_data)
        assert not report.ok
        assert any(oid in problem and pack.name in problem for problem in report.problems)
    with pytest.raises(ObjectMissing) as error:
        restore(repo, stored, tmp_path / "target.img")
    assert pack.name in str(error.value)
    assert not (tmp_path / "target.img").exists()


def test_truncated_pack_is_found_and_stops_restore(stored, repo, tmp_path):
    pack = max(all_packs(repo), key=lambda p: p.stat().st_size)
    data = pack.read_bytes()
    pack.write_bytes(data[: len(data) - 100])

    report = verify(repo)
    assert not report.ok and any("truncated" in p for p in report.problems)
    assert not verify(repo, read_data=True).ok
    with pytest.raises(DataCorrupted, match="truncated"):
        restore(repo, stored, tmp_path / "target.img")


def test_object_replaced_by_another_is_found(repo, image, tmp_path):
    """Swapping two records of the same size inside a pack is caught by the id check."""
    point = backup(repo, "job", image, "full").point_id  # no compression: equal-size records
    pack = max(all_packs(repo), key=lambda p: p.stat().st_size)
    data = bytearray(pack.read_bytes())
    length = RECORD_PREFIX + struct.unpack_from(">I", data, 8 + 12)[0]
    first, second = data[8 : 8 + length], data[8 + length : 8 + 2 * length]
    assert len(first) == len(second) == length
    data[8 : 8 + length], data[8 + length : 8 + 2 * length] = second, first
    pack.write_bytes(bytes(data))

    assert not verify(repo).ok
    with pytest.raises(DataCorrupted):
        restore(repo, point, tmp_path / "target.img")


def test_damaged_point_file_is_found(stored, repo, tmp_path):
    point_file = repo / "points" / stored
    data = bytearray(point_file.read_bytes())
    data[20] ^= 0xFF
    point_file.write_bytes(bytes(data))

    report = verify(repo)
    assert len(report.problems) == 1 and stored in report.problems[0]
    with pytest.raises(DataCorrupted, match=stored):
        restore(repo, stored, tmp_path / "target.img")


def test_intact_repository_verifies_and_restores(stored, repo, image, tmp_path):
    report = verify(repo, read_data=True)
    assert report.ok and report.points_checked == 1 and report.objects_checked > 0
    restore(repo, stored, tmp_path / "target.img")
    assert sha256(tmp_path / "target.img") == sha256(image)


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
