"""Point files: the index of one recovery point, written once and published by a rename.

Layout (integers big-endian):

    offset        size     field
    0             8        magic b"ZDMPOINT"
    8             4        format version (1)
    12            4        table entry size (64)
    16            64 * N   block table, one entry per block (below)
    16 + 32N      L        metadata, UTF-8 JSON (job, kind, mode, sizes, ...)
    end - 40      8        L
    end - 32      32       checksum of every byte before it: SHA-256, or for encrypted points
                           HMAC-SHA256 keyed by the repository id key

Table entry (64 bytes): object id (32), pack id (16), offset of the object record in the pack
(u64), record length (u32), reserved (4 zero bytes). An all-zero block has an all-zero entry
and no object: zero regions cost 64 bytes per block and are restored as holes.

The table comes first so it can be streamed to disk while the backup runs, and streamed back
(bounded memory) by restores and by the next incremental backup.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from workers.engine.errors import DataCorrupted, PointNotFound
from workers.engine.keys import RepositoryKeys
from workers.engine.repository import _write_all, write_limited

MAGIC = b"ZDMPOINT"
VERSION = 1
PREFIX = struct.Struct(">8sII")
FOOTER = struct.Struct(">Q32s")
ENTRY = struct.Struct(">32s16sQI4x")
ENTRY_SIZE = ENTRY.size  # 64
ZERO_ENTRY = bytes(ENTRY_SIZE)
_BUFFER = 1 << 20


@dataclass(frozen=True)
class RecoveryPoint:
    """What `list_points` returns for each point (the point file's metadata)."""

    id: str
    job: str
    kind: str  # "block" (directory sources later)
    mode: str  # "full" | "incremental"
    parent: str | None
    created_at: str  # UTC ISO 8601, when the backup started
    finished_at: str
    source: str
    source_size: int
    stored_size: int  # bytes of new objects this point added to the repository
    compression: str | None
    encrypted: bool
    block_size: int
    block_count: int

    @classmethod
    def from_meta(cls, meta: dict) -> RecoveryPoint:
        return cls(**{name: meta[name] for name in cls.__dataclass_fields__})

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _checksum(keys: RepositoryKeys | None):
    if keys is None:
        return hashlib.sha256()
    return hmac.new(keys.id_key, digestmod=hashlib.sha256)


class PointWriter:
    """Streams a point file into a temp path; `finish` seals it (metadata, checksum, fsync)."""

    def __init__(self, path: Path, keys: RepositoryKeys | None, limiter=None):
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self._sum = _checksum(keys)
        self._limiter = limiter
        self._buffer = bytearray()
        self.size = 0
        self._emit(PREFIX.pack(MAGIC, VERSION, ENTRY_SIZE))

    def _emit(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= _BUFFER:
            self._flush()

    def _flush(self) -> None:
        self._sum.update(self._buffer)
        write_limited(self._fd, self._buffer, self._limiter)
        self.size += len(self._buffer)
        self._buffer = bytearray()

    def add(self, entry: bytes) -> None:
        self._emit(entry)

    def finish(self, meta: dict) -> None:
        encoded = json.dumps(meta, sort_keys=True).encode()
        self._emit(encoded)
        self._emit(struct.pack(">Q", len(encoded)))
        self._flush()
        digest = self._sum.digest()
        _write_all(self._fd, digest)
        self.size += len(digest)
        os.fsync(self._fd)
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_meta(path: Path) -> dict:
    """The metadata of a point file (without checking the checksum: that reads the whole file)."""
    name = path.name
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size < PREFIX.size + FOOTER.size:
                raise DataCorrupted(f"Point file {name} is truncated.", name)
            handle.seek(size - FOOTER.size)
            length, _ = FOOTER.unpack(handle.read(FOOTER.size))
            if length > size - PREFIX.size - FOOTER.size:
                raise DataCorrupted(f"Point file {name} is damaged (bad metadata length).", name)
            handle.seek(size - FOOTER.size - length)
            meta = json.loads(handle.read(length))
            handle.seek(0)
            magic, version, record = PREFIX.unpack(handle.read(PREFIX.size))
    except FileNotFoundError:
        raise PointNotFound(f"Recovery point {name} does not exist.") from None
    except (ValueError, UnicodeDecodeError, struct.error):
        raise DataCorrupted(f"Point file {name} is damaged (unreadable metadata).", name) from None
    if magic != MAGIC or version != VERSION or record != ENTRY_SIZE:
        raise DataCorrupted(f"Point file {name} is damaged (bad header).", name)
    expected = PREFIX.size + meta.get("block_count", -1) * ENTRY_SIZE + length + FOOTER.size
    if expected != size or meta.get("id") != name:
        raise DataCorrupted(f"Point file {name} is damaged (sizes do not agree).", name)
    return meta


def check_point_file(path: Path, keys: RepositoryKeys | None) -> None:
    """Recompute the checksum of a whole point file; DataCorrupted when it does not match."""
    name = path.name
    digest = _checksum(keys)
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(0)
        remaining = size - 32
        while remaining > 0:
            chunk = handle.read(min(_BUFFER, remaining))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
        stored = handle.read(32)
    if not hmac.compare_digest(digest.digest(), stored):
        raise DataCorrupted(f"Point file {name} failed its checksum (damaged or tampered).", name)


def iter_table(path: Path) -> Iterator[bytes]:
    """The point's table entries in block order, read in bounded chunks."""
    meta = read_meta(path)
    remaining = meta["block_count"] * ENTRY_SIZE
    with open(path, "rb") as handle:
        handle.seek(PREFIX.size)
        while remaining > 0:
            chunk = handle.read(min(_BUFFER, remaining))
            if not chunk:
                raise DataCorrupted(f"Point file {path.name} is truncated.", path.name)
            remaining -= len(chunk)
            for start in range(0, len(chunk), ENTRY_SIZE):
                yield chunk[start : start + ENTRY_SIZE]
