"""Stored objects: one block of data, compressed, maybe encrypted, named by its content.

Objects live inside pack files (see `workers.engine.packs`). One object record:

    offset size  field
    0      4     magic b"ZDMO"
    4      1     format version (1)
    5      1     codec: 0 none, 1 gzip (RFC 1952 member), 2 lz4 (LZ4 frame)
    6      1     flags: bit 0 = payload encrypted
    7      1     reserved, 0
    8      4     plain length (bytes of the block)
    12     4     payload length (bytes after the id)
    16     32    object id
    48     ...   payload: the compressed block, or, when encrypted,
                 nonce (12) + AES-256-GCM(compressed block) + tag (16),
                 with the first 48 record bytes (header and id) as associated data.

Object id (32 bytes, shown as 64 hex characters): SHA-256(codec byte + plain block) for plain
objects, HMAC-SHA256(id key, codec byte + plain block) for encrypted ones, so the names of
encrypted objects do not reveal content hashes. Every read recomputes the id from the decoded block.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
import zlib

import lz4.frame
from isal import igzip

from workers.engine.errors import DataCorrupted, InvalidArgument, KeyMissing
from workers.engine.keys import RepositoryKeys

MAGIC = b"ZDMO"
VERSION = 1
HEADER = struct.Struct(">4sBBBBII")
HEADER_SIZE = HEADER.size  # 16
RECORD_PREFIX = HEADER_SIZE + 32  # header + object id
FLAG_ENCRYPTED = 1
ID_SIZE = 32
ZERO_ID = bytes(ID_SIZE)  # the table entry of an all-zero block; no object is stored

CODECS = {None: 0, "gzip": 1, "lz4": 2}
CODEC_NAMES = {number: name for name, number in CODECS.items()}
GZIP_LEVEL = 1  # isal levels run 0-3; 1 is the speed/ratio sweet spot on disk images


def _compress(codec: int, data: bytes) -> bytes:
    if codec == 1:
        return igzip.compress(data, GZIP_LEVEL)
    if codec == 2:
        return lz4.frame.compress(data, content_checksum=False)
    return data


def _decompress(codec: int, data: bytes) -> bytes:
    if codec == 1:
        return igzip.decompress(data)
    if codec == 2:
        return lz4.frame.decompress(data)
    if codec == 0:
        return data
    raise ValueError(f"unknown codec {codec}")


class ObjectCodec:
    """Names and encodes the blocks of one backup (its compression and, maybe, its keys)."""

    def __init__(self, compression: str | None, keys: RepositoryKeys | None):
        if compression not in CODECS:
            raise InvalidArgument(f"Unknown compression {compression!r}; use gzip, lz4 or none.")
        self.compression = compression
        self.codec = CODECS[compression]
        self.keys = keys
        self._codec_byte = bytes([self.codec])
        if keys is not None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._aead = AESGCM(keys.data_key)

    def object_id(self, block: bytes) -> bytes:
        return object_id(self.codec, block, self.keys)

    def encode(self, oid: bytes, block: bytes) -> bytes:
        """The object record of `block` (header, id, payload)."""
        payload = _compress(self.codec, block)
        if self.keys is None:
            header = HEADER.pack(MAGIC, VERSION, self.codec, 0, 0, len(block), len(payload))
            return header + oid + payload
        size = 12 + len(payload) + 16
        prefix = HEADER.pack(MAGIC, VERSION, self.codec, FLAG_ENCRYPTED, 0, len(block), size) + oid
        nonce = secrets.token_bytes(12)
        return prefix + nonce + self._aead.encrypt(nonce, payload, prefix)


def object_id(codec: int, block: bytes, keys: RepositoryKeys | None) -> bytes:
    if keys is None:
        digest = hashlib.sha256(bytes([codec]))
        digest.update(block)
        return digest.digest()
    mac = hmac.new(keys.id_key, bytes([codec]), hashlib.sha256)
    mac.update(block)
    return mac.digest()


def parse_prefix(raw: bytes, oid: bytes) -> tuple[int, int, int, int]:
    """(codec, flags, plain length, payload length) of a record that should hold `oid`."""
    name = oid.hex()
    if len(raw) < RECORD_PREFIX:
        raise DataCorrupted(f"Object {name} is truncated.", name)
    magic, version, codec, flags, _, plain_len, payload_len = HEADER.unpack_from(raw)
    if magic != MAGIC or version != VERSION or codec not in CODEC_NAMES:
        raise DataCorrupted(f"Object {name} has a damaged header.", name)
    if raw[HEADER_SIZE:RECORD_PREFIX] != oid:
        raise DataCorrupted(
            f"Object {name} is not where its point says (another id is there).", name
        )
    return codec, flags, plain_len, payload_len


def decode_object(
    record: bytes, oid: bytes, keys: RepositoryKeys | None, expected_length: int | None = None
) -> bytes:
    """The plain block stored in `record`, checked against its id; DataCorrupted names it."""
    name = oid.hex()
    codec, flags, plain_len, payload_len = parse_prefix(record, oid)
    if len(record) != RECORD_PREFIX + payload_len:
        raise DataCorrupted(f"Object {name} is truncated or has a damaged length.", name)
    payload = memoryview(record)[RECORD_PREFIX:]
    encrypted = bool(flags & FLAG_ENCRYPTED)
    if encrypted:
        if keys is None:
            raise KeyMissing(f"Object {name} is encrypted and no master key was given.")
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            payload = AESGCM(keys.data_key).decrypt(
                bytes(payload[:12]), bytes(payload[12:]), bytes(record[:RECORD_PREFIX])
            )
        except InvalidTag:
            raise DataCorrupted(
                f"Object {name} failed authentication (tampered or damaged).", name
            ) from None
    try:
        block = _decompress(codec, bytes(payload))
    except (RuntimeError, OSError, ValueError, EOFError, zlib.error) as error:
        raise DataCorrupted(f"Object {name} does not decompress ({error}).", name) from None
    if len(block) != plain_len or (expected_length is not None and plain_len != expected_length):
        raise DataCorrupted(f"Object {name} holds a block of the wrong length.", name)
    if not hmac.compare_digest(object_id(codec, block, keys if encrypted else None), oid):
        raise DataCorrupted(f"Object {name} does not match its id (damaged data).", name)
    return block
