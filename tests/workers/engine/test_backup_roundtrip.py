"""Every mode x compression x encryption combination restores byte-identical data."""

import gzip
import itertools

import lz4.frame
import pytest

from tests.workers.engine.helpers import BLOCK, MIB, scatter_writes, sha256, write_image
from workers.engine import backup, list_points, restore, verify
from workers.engine.objects import RECORD_PREFIX

COMBINATIONS = list(
    itertools.product(["full", "incremental"], [None, "gzip", "lz4"], [None, "aes256"])
)


@pytest.mark.parametrize(("mode", "compression", "encryption"), COMBINATIONS)
def test_round_trip_is_byte_identical(tmp_path, repo, master_key, mode, compression, encryption):
    source = write_image(tmp_path / "disk.img", 5 * MIB + 12345, seed=11, zero_tail=MIB)
    first = backup(repo, "job", source, mode, compression=compression, encryption=encryption)
    first_sha = sha256(source)
    scatter_writes(source, 3)
    second = backup(repo, "job", source, mode, compression=compression, encryption=encryption)

    assert first.mode == "full"  # an incremental job's first run is a full
    assert second.mode == mode
    assert second.parent == (first.point_id if mode == "incremental" else None)
    for point, expected in ((first.point_id, first_sha), (second.point_id, sha256(source))):
        target = tmp_path / f"restored-{point}.img"
        restore(repo, point, target)
        assert sha256(target) == expected
    assert verify(repo, read_data=True).ok
    points = list_points(repo, "job")
    assert [p.compression for p in points] == [compression, compression]
    assert [p.encrypted for p in points] == [bool(encryption)] * 2


def _records(repo):
    """(header, payload) of every object record in the repository's packs."""
    import struct

    for pack in (repo / "packs").rglob("*"):
        if not pack.is_file():
            continue
        data = pack.read_bytes()
        offset = 8
        while offset < len(data):
            payload_len = struct.unpack_from(">I", data, offset + 12)[0]
            yield (
                data[offset : offset + 16],
                data[offset + RECORD_PREFIX : offset + RECORD_PREFIX + payload_len],
            )
            offset += RECORD_PREFIX + payload_len


def test_gzip_objects_are_rfc1952_members(image, repo):
    backup(repo, "job", image, "full", compression="gzip")
    payloads = [payload for _, payload in _records(repo)]
    assert payloads
    for payload in payloads:
        assert payload[:2] == b"\x1f\x8b"
        assert len(gzip.decompress(payload)) <= BLOCK


def test_lz4_objects_are_lz4_frames(image, repo):
    backup(repo, "job", image, "full", compression="lz4")
    payloads = [payload for _, payload in _records(repo)]
    assert payloads
    for payload in payloads:
        assert payload[:4] == b"\x04\x22\x4d\x18"  # LZ4 frame magic, little-endian
        assert len(lz4.frame.decompress(payload)) <= BLOCK


def test_encrypted_repository_reveals_neither_content_nor_content_hashes(
    tmp_path, repo, master_key
):
    import hashlib

    source = tmp_path / "secret.img"
    block = (b"TOP-SECRET-PAYLOAD " * 30000)[:BLOCK]
    source.write_bytes(block * 2)
    backup(repo, "job", source, "full", encryption="aes256")
    stored = b"".join(p.read_bytes() for p in (repo / "packs").rglob("*") if p.is_file())
    stored += b"".join(p.read_bytes() for p in (repo / "points").iterdir())
    assert b"TOP-SECRET" not in stored
    for codec in (0, 1, 2):
        assert hashlib.sha256(bytes([codec]) + block).digest() not in stored
    assert hashlib.sha256(block).digest() not in stored
