"""Pack files: the unit of storage and of deletion, a magic and then object records back to back.

    offset  size  field
    0       8     magic b"ZDMPACK1"
    8       ...   object records (see `workers.engine.objects`), each 48 + payload bytes

A backup appends new records to one open pack per worker thread, in its working directory, and
renames the pack under `packs/<xx>/<id>` once it reaches about 16 MiB (or the backup ends). A
pack is never modified after it gets that name. See docs/repository-format.md, "Pack files".
"""

from __future__ import annotations

import os
import secrets
from typing import TYPE_CHECKING

from workers.engine import fs
from workers.engine.errors import DataCorrupted, ObjectMissing
from workers.engine.objects import RECORD_PREFIX, parse_prefix

if TYPE_CHECKING:
    from workers.engine.operations import Operation
    from workers.engine.repository import RepositoryDir

PACK_TARGET_SIZE = 16 * 1024 * 1024  # a pack is closed once it reaches this size
PACK_MAGIC = b"ZDMPACK1"
PACK_ID_SIZE = 16
FLUSH_STEP = 4 * 1024 * 1024  # pack bytes handed to the flusher at a time


class PackWriter:
    """Appends object records to one pack in the operation's working directory."""

    def __init__(self, op: Operation):
        self.op = op
        self.pack_id = secrets.token_bytes(PACK_ID_SIZE)
        op.register_pack(self.pack_id)
        self.tmp = op.dir / f"pack-{self.pack_id.hex()}"
        self._fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self.size = 0
        self._flushed = 0
        try:
            self._write(PACK_MAGIC)
        except BaseException:
            self.abandon()
            raise

    def _write(self, data: bytes) -> None:
        fs.write_limited(self._fd, data, self.op.limiter)
        self.size += len(data)
        if self.size - self._flushed >= FLUSH_STEP:
            self._flush()

    def _flush(self) -> None:
        self.op.flusher.submit(self._fd, self._flushed, self.size - self._flushed)
        self._flushed = self.size

    def append(self, record: bytes) -> tuple[bytes, int]:
        offset = self.size
        self._write(record)
        return self.pack_id, offset

    def close(self) -> None:
        """Finish the pack: start its writeback and give it its place under packs/."""
        self._flush()
        fd, self._fd = self._fd, -1
        os.close(fd)
        os.rename(self.tmp, self.op.repo.pack_path(self.pack_id))

    def abandon(self) -> None:
        """Close an unfinished pack (a failed or canceled backup) without publishing it. Its
        file in the working directory is deleted with the directory; an open descriptor would
        keep its space allocated for as long as the process lives (a long-running agent: a
        full repository stayed full after the failed backup)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


def read_record(repo: RepositoryDir, oid: bytes, pack_id: bytes, offset: int, length: int) -> bytes:
    """The object record at `offset` of a pack; ObjectMissing/DataCorrupted name both."""
    name, pack = oid.hex(), pack_id.hex()
    try:
        fd = os.open(repo.pack_path(pack_id), os.O_RDONLY)
    except FileNotFoundError:
        raise ObjectMissing(
            f"Object {name} is missing: its pack {pack} is not in the repository.", name
        ) from None
    try:
        record = os.pread(fd, length, offset)
    finally:
        os.close(fd)
    if len(record) != length:
        raise DataCorrupted(
            f"Object {name} is truncated: pack {pack} ends before offset {offset + length}.",
            name,
        )
    return record


def record_problem(
    repo: RepositoryDir, oid: bytes, pack_id: bytes, offset: int, length: int
) -> str | None:
    """A cheap check (header, id and sizes, no data read): None, or what is wrong."""
    name, pack = oid.hex(), pack_id.hex()
    try:
        fd = os.open(repo.pack_path(pack_id), os.O_RDONLY)
    except FileNotFoundError:
        return f"Object {name} is missing: its pack {pack} is not in the repository."
    try:
        prefix = os.pread(fd, RECORD_PREFIX, offset)
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    if size < offset + length:
        return f"Object {name} is truncated: pack {pack} ends before offset {offset + length}."
    try:
        _, _, _, payload_len = parse_prefix(prefix, oid)
    except DataCorrupted as error:
        return f"{str(error).rstrip('.')} (in pack {pack})."
    if RECORD_PREFIX + payload_len != length:
        return f"Object {name} has a damaged length (in pack {pack})."
    return None
