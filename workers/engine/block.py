"""Block sources (a device or an image file): the backup and restore pipelines.

The calling thread reads the source (or the point table) in order and keeps a bounded queue of
blocks in flight; a thread pool hashes, compresses, encrypts and writes them (hashlib, isal, lz4
and cryptography release the GIL, so both cores work). Results are consumed in block order, so
the point table is streamed to disk and memory stays bounded whatever the device size.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import stat
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from workers.engine import packs
from workers.engine.errors import (
    BackupCanceled,
    RestoreCanceled,
    SourceError,
    TargetError,
)
from workers.engine.objects import ObjectCodec, decode_object
from workers.engine.points import ENTRY, ZERO_ENTRY

WORKERS = max(2, os.cpu_count() or 2)
IN_FLIGHT = 4 * WORKERS  # blocks read but not yet consumed: bounds memory to a few MiB


@functools.cache
def tune_allocator() -> None:
    """Keep block-sized buffers on the heap (glibc): by default each one is mmap'd and unmapped
    again, and the page faults cost about half of a restore's time. Memory use is unchanged:
    the heap reuses the same few MiB of in-flight buffers."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 32 * 1024 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 64 * 1024 * 1024)  # M_TRIM_THRESHOLD


@dataclass
class BlockStats:
    bytes_read: int = 0
    objects_written: int = 0
    stored_size: int = 0  # bytes of new object files
    reused_blocks: int = 0
    zero_blocks: int = 0
    healed_blocks: int = 0  # unchanged blocks stored again because their object is distrusted


def open_block_source(path: str) -> tuple[int, int]:
    """(fd, size) of a regular file or block device."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as error:
        raise SourceError(f"Cannot open source {path} ({error.strerror}).") from None
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
        os.close(fd)
        raise SourceError(f"Source {path} is neither a block device nor an image file.")
    size = os.lseek(fd, 0, os.SEEK_END)
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    return fd, size


class BlockStore:
    """Turns blocks into table entries: zero blocks, reused parent blocks, or new objects.

    `process` runs in the worker threads; `count` in the consuming thread. Objects named in
    `distrust` (found damaged or missing by a verify) are never reused from the parent: such a
    block is stored again, which heals the job's next points.
    """

    def __init__(self, op, codec: ObjectCodec, block_size: int, distrust: frozenset = frozenset()):
        self.op = op
        self.codec = codec
        self.block_size = block_size
        self.distrust = distrust
        self._zero = bytes(block_size)
        self.stats = BlockStats()

    def distrusts_any(self, entries) -> bool:
        return bool(self.distrust) and any(entry[:32] in self.distrust for entry in entries)

    def process(self, block: bytes, parent_entry: bytes | None = None) -> tuple[bytes, int, bool]:
        """(table entry, bytes of the new record or 0, whether a distrusted object was healed)."""
        if block == (self._zero if len(block) == self.block_size else bytes(len(block))):
            return ZERO_ENTRY, 0, False
        oid = self.codec.object_id(block)
        healed = False
        if parent_entry is not None and parent_entry[:32] == oid:
            # Unchanged since the parent: point at the parent's copy, once the pack holding it
            # is claimed (a concurrent prune may be deleting the parent; then we store it again).
            if oid in self.distrust:
                healed = True
            elif self.op.claim_pack(parent_entry[32:48]):
                return parent_entry, 0, False
        record = self.codec.encode(oid, block)
        pack_id, offset = self.op.store(record)
        return ENTRY.pack(oid, pack_id, offset, len(record)), len(record), healed

    def count(self, entry: bytes, written: int, healed: bool = False) -> bytes:
        if entry == ZERO_ENTRY:
            self.stats.zero_blocks += 1
        elif written:
            self.stats.objects_written += 1
            self.stats.stored_size += written
            self.stats.healed_blocks += healed
        else:
            self.stats.reused_blocks += 1
        return entry


def backup_blocks(store: BlockStore, fd, size, table, parent_table, progress, cancel) -> BlockStats:
    """Read every block of `fd`, store the new ones, append each block's entry to `table`."""
    tune_allocator()
    stats = store.stats
    process = store.process
    block_size = store.block_size

    def consume(future) -> None:
        table.add(store.count(*future.result()))
        progress.advance(0)  # reports go on while the last blocks are written

    in_flight: deque = deque()
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="zdm-backup") as pool:
        try:
            for offset in range(0, size, block_size):
                if cancel():
                    raise BackupCanceled("The backup was canceled; no recovery point was created.")
                length = min(block_size, size - offset)
                try:
                    block = os.pread(fd, length, offset)
                except OSError as error:
                    raise SourceError(
                        f"Reading the source failed at offset {offset} ({error.strerror})."
                    ) from None
                if len(block) != length:
                    raise SourceError(f"The source shrank while it was read (at offset {offset}).")
                parent_entry = next(parent_table, None) if parent_table is not None else None
                in_flight.append(pool.submit(process, block, parent_entry))
                stats.bytes_read += length
                progress.advance(length)
                while len(in_flight) >= IN_FLIGHT:
                    consume(in_flight.popleft())
            while in_flight:
                consume(in_flight.popleft())
        except BaseException:
            for future in in_flight:
                future.cancel()
            raise
    store.op.close_packs()
    return stats


def restore_blocks(
    repo, table, size, block_size, keys, out_fd, sparse: bool, progress, cancel, pool=None
) -> None:
    """Write every block of the table to `out_fd`; zero blocks become holes when `sparse`."""
    tune_allocator()
    if pool is None:
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="zdm-restore") as own_pool:
            return restore_blocks(
                repo, table, size, block_size, keys, out_fd, sparse, progress, cancel, own_pool
            )

    def load(entry: bytes, length: int) -> bytes:
        oid, pack_id, offset, record_length = ENTRY.unpack(entry)
        record = packs.read_record(repo, oid, pack_id, offset, record_length)
        return decode_object(record, oid, keys, length)

    zero = bytes(block_size)

    def consume(offset: int, length: int, future) -> None:
        if future is None:
            if not sparse:
                _pwrite_all(out_fd, zero[:length], offset)
        else:
            _pwrite_all(out_fd, future.result(), offset)
        progress.advance(length)

    in_flight: deque = deque()
    offset = 0
    try:
        for entry in table:
            if cancel():
                raise RestoreCanceled("The restore was canceled.")
            length = min(block_size, size - offset)
            future = None if entry == ZERO_ENTRY else pool.submit(load, entry, length)
            in_flight.append((offset, length, future))
            offset += length
            while len(in_flight) >= IN_FLIGHT:
                consume(*in_flight.popleft())
        while in_flight:
            consume(*in_flight.popleft())
    except BaseException:
        for _, _, future in in_flight:
            if future is not None:
                future.cancel()
        raise


def _pwrite_all(fd: int, data, offset: int) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.pwrite(fd, view, offset)
        except OSError as error:
            raise TargetError(
                f"Writing the restore target failed at offset {offset} ({error.strerror})."
            ) from None
        view = view[written:]
        offset += written
