"""Damaged or missing data is found by verify and stops a restore with a message naming it."""

import struct

import pytest

from tests.engine.helpers import all_packs, sha256
from workers.engine import (
    DataCorrupted,
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
