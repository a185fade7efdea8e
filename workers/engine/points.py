"""Point files: the index of one recovery point, written once and published by a hard link.

Layout (integers big-endian):

    offset        size     field
    0             8        magic b"ZDMPOINT"
    8             4        format version (1)
    12            4        table entry size (64)
    16            64 * N   block table, one entry per block (below)
    16 + 64N      L        metadata, UTF-8 JSON (job, kind, mode, sizes, ...)
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

import errno
import hashlib
import hmac
import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path

from workers.engine import fs
from workers.engine.errors import DataCorrupted, PointNotFound
from workers.engine.keys import RepositoryKeys

MAGIC = b"ZDMPOINT"
VERSION = 1
PREFIX = struct.Struct(">8sII")
FOOTER = struct.Struct(">Q32s")
ENTRY = struct.Struct(">32s16sQI4x")
ENTRY_SIZE = ENTRY.size  # 64
ZERO_ENTRY = bytes(ENTRY_SIZE)
_BUFFER = 1 << 20


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
        self.digest = ""  # the checksum (hex) once finished
        self._emit(PREFIX.pack(MAGIC, VERSION, ENTRY_SIZE))

    def _emit(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= _BUFFER:
            self._flush()

    def _flush(self) -> None:
        self._sum.update(self._buffer)
        fs.write_limited(self._fd, self._buffer, self._limiter)
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
        self.digest = digest.hex()
        fs.write_all(self._fd, digest)
        self.size += len(digest)
        os.fsync(self._fd)
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class PointFile:
    """A point file opened once: its metadata, checksum and table are all read through the same
    open file, so a point file replaced under its name while it is checked and read (by someone
    with write access to the repository) cannot slip other bytes past the check."""

    def __init__(self, path: Path):
        self.name = path.name
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise PointNotFound(f"Recovery point {self.name} does not exist.") from None
        except OSError as error:
            if error.errno != errno.ELOOP:
                raise
            raise DataCorrupted(f"Point file {self.name} is a symbolic link.", self.name) from None
        try:
            self.size = os.fstat(self._fd).st_size
            self.meta, self.stored_checksum = self._read_meta()
        except BaseException:
            self.close()
            raise

    def _pread(self, length: int, offset: int) -> bytes:
        data = os.pread(self._fd, length, offset)
        if len(data) != length:
            raise DataCorrupted(f"Point file {self.name} is truncated.", self.name)
        return data

    def _read_meta(self) -> tuple[dict, bytes]:
        name, size = self.name, self.size
        if size < PREFIX.size + FOOTER.size:
            raise DataCorrupted(f"Point file {name} is truncated.", name)
        try:
            length, checksum = FOOTER.unpack(self._pread(FOOTER.size, size - FOOTER.size))
            if length > size - PREFIX.size - FOOTER.size:
                raise DataCorrupted(f"Point file {name} is damaged (bad metadata length).", name)
            meta = json.loads(self._pread(length, size - FOOTER.size - length))
            magic, version, record = PREFIX.unpack(self._pread(PREFIX.size, 0))
        except (ValueError, UnicodeDecodeError, struct.error):
            raise DataCorrupted(
                f"Point file {name} is damaged (unreadable metadata).", name
            ) from None
        if magic != MAGIC or version != VERSION or record != ENTRY_SIZE:
            raise DataCorrupted(f"Point file {name} is damaged (bad header).", name)
        if not isinstance(meta, dict):
            raise DataCorrupted(f"Point file {name} is damaged (unreadable metadata).", name)
        expected = PREFIX.size + meta.get("block_count", -1) * ENTRY_SIZE + length + FOOTER.size
        if expected != size or meta.get("id") != name:
            raise DataCorrupted(f"Point file {name} is damaged (sizes do not agree).", name)
        return meta, checksum

    @property
    def digest(self) -> str:
        """The point's digest as the database records it: its checksum (the last 32 bytes), hex."""
        return self.stored_checksum.hex()

    def check(self, keys: RepositoryKeys | None) -> None:
        """Recompute the checksum of the whole file; DataCorrupted when it does not match."""
        digest = _checksum(keys)
        offset, end = 0, self.size - len(self.stored_checksum)
        while offset < end:
            chunk = self._pread(min(_BUFFER, end - offset), offset)
            digest.update(chunk)
            offset += len(chunk)
        if not hmac.compare_digest(digest.digest(), self.stored_checksum):
            raise DataCorrupted(
                f"Point file {self.name} failed its checksum (damaged or tampered).", self.name
            )

    def check_digest(self, expected: str | None) -> None:
        """Refuse a point file that is not the one the database recorded when it was made."""
        if expected is not None and not hmac.compare_digest(self.digest, expected.lower()):
            raise DataCorrupted(
                f"Recovery point {self.name} does not match the digest recorded when it was "
                f"made (replaced or tampered).",
                self.name,
            )

    def table(self) -> Iterator[bytes]:
        """The point's table entries in block order, read in bounded chunks."""
        offset, end = PREFIX.size, PREFIX.size + self.meta["block_count"] * ENTRY_SIZE
        while offset < end:
            chunk = self._pread(min(_BUFFER, end - offset), offset)
            offset += len(chunk)
            for start in range(0, len(chunk), ENTRY_SIZE):
                yield chunk[start : start + ENTRY_SIZE]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> PointFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_meta(path: Path) -> dict:
    """The metadata of a point file (without checking the checksum: that reads the whole file)."""
    with PointFile(path) as point:
        return point.meta


def iter_table(point: Path | PointFile) -> Iterator[bytes]:
    """The table entries of a point (a path, or a point file already open) in block order."""
    if isinstance(point, PointFile):
        yield from point.table()
        return
    with PointFile(point) as opened:
        yield from opened.table()
