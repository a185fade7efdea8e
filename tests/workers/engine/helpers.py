"""Helpers for the backup engine's tests: real image files, hashes, the command line."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

MIB = 1024 * 1024
BLOCK = 512 * 1024  # the repository block size (workers.engine.repository.DEFAULT_BLOCK_SIZE)


def write_image(path: Path, size: int, seed: int = 1, zero_tail: int = 0) -> Path:
    """An image of mixed content: text-like (compressible), random, and all-zero stretches."""
    rng = random.Random(seed)
    words = [rng.randbytes(rng.randrange(2, 9)).hex().encode() for _ in range(400)]
    with open(path, "wb") as image:
        written = 0
        data_size = size - zero_tail
        while written < data_size:
            kind = rng.choice(("text", "random", "zero"))
            length = min(rng.randrange(64 * 1024, 1024 * 1024), data_size - written)
            if kind == "text":
                chunk = b" ".join(rng.choice(words) for _ in range(length // 4))[:length]
                chunk = chunk.ljust(length, b".")
            elif kind == "random":
                chunk = rng.randbytes(length)
            else:
                chunk = bytes(length)
            image.write(chunk)
            written += length
        image.truncate(size)
    return path


def scatter_writes(path: Path, count: int, size: int = 64 * 1024, seed: int = 9) -> list[int]:
    """Overwrite `count` non-overlapping, block-aligned ranges with random bytes; their offsets."""
    rng = random.Random(seed)
    total = path.stat().st_size
    blocks = rng.sample(range(total // BLOCK), count)
    with open(path, "r+b") as image:
        for block in blocks:
            image.seek(block * BLOCK + 4096)
            image.write(rng.randbytes(size))
    return sorted(blocks)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def packs_size(repo: Path) -> int:
    return sum(f.stat().st_size for f in (repo / "packs").rglob("*") if f.is_file())


def all_packs(repo: Path) -> list[Path]:
    return sorted(f for f in (repo / "packs").rglob("*") if f.is_file())


def run_engine(*args: str | os.PathLike, env: dict | None = None, **kwargs):
    """Run `python -m workers.engine ...` and return the CompletedProcess (text mode)."""
    return subprocess.run(
        [sys.executable, "-m", "workers.engine", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=120,
        **kwargs,
    )


def rewrite_point(source: Path, target: Path, **changes) -> dict:
    """Write `target`: the point file `source` with its metadata changed and a fresh SHA-256
    checksum, so the result is an internally consistent plain point file. Returns its meta."""
    data = source.read_bytes()
    length = int.from_bytes(data[-40:-32], "big")
    body, meta = data[: -40 - length], json.loads(data[-40 - length : -40])
    meta.update(changes)
    for key in [key for key, value in changes.items() if value is None]:
        del meta[key]
    encoded = json.dumps(meta, sort_keys=True).encode()
    content = body + encoded + len(encoded).to_bytes(8, "big")
    target.write_bytes(content + hashlib.sha256(content).digest())
    return meta


def forge_plain_point(repo: Path, victim: str, source: Path) -> None:
    """Replace point `victim` by a plain point of `source`'s data that is consistent in itself
    (right name, job and sequence, valid checksum, intact objects): what someone with write
    access to the repository, but without the keys, can make."""
    from workers.engine import backup
    from workers.engine.points import read_meta

    victim_meta = read_meta(repo / "points" / victim)
    forged = backup(repo, "someone else", source, "full")
    made = repo / "points" / forged.point_id
    rewrite_point(made, repo / "points" / victim, id=victim, job=victim_meta["job"],
                  sequence=victim_meta.get("sequence"), created_at=victim_meta["created_at"])  # fmt: skip
    made.unlink()


def plain_object_id(block: bytes) -> str:
    """The id of an uncompressed, unencrypted object: SHA-256 of codec byte 0 and the block."""
    return hashlib.sha256(b"\x00" + block).hexdigest()


def damage_object(repo: Path, object_id: str) -> str:
    """Flip one payload byte of the object's record in its pack; returns the pack's name."""
    marker = bytes.fromhex(object_id)
    for pack in all_packs(repo):
        data = bytearray(pack.read_bytes())
        at = data.find(marker)
        if at >= 16:
            data[at + 32 + 5] ^= 0x01  # the record: 16-byte header, id, then the payload
            pack.write_bytes(bytes(data))
            return pack.name
    raise AssertionError(f"object {object_id} is in no pack")


class SmallDisk:
    """A real, small file system (tmpfs) mounted on `path`, for a repository that fills up or
    turns read-only. Needs root (the test machine and CI run as root); `mount` skips the test,
    saying why, where it cannot mount. Use it as `with SmallDisk.mount(...) as disk:`, which
    unmounts it in every case."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def mount(cls, path: Path, size_mib: int) -> SmallDisk:
        import pytest

        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs for a full or read-only repository needs root")
        path.mkdir(parents=True, exist_ok=True)
        result = _mount("-t", "tmpfs", "-o", f"size={size_mib}m,mode=0755", "tmpfs", path)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs on {path}: {result.stderr.strip()}")
        return cls(path)

    def __enter__(self) -> SmallDisk:
        return self

    def __exit__(self, *_exc) -> None:
        self.unmount()

    def remount(self, options: str) -> None:
        """`ro`, `rw`, `size=40m`, ..."""
        result = _mount("-o", f"remount,{options}", self.path)
        assert result.returncode == 0, result.stderr

    def free(self) -> int:
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize

    def fill(self, name: str = "filler") -> Path:
        """Take every free byte with a file outside the repository (someone else's data)."""
        filler = self.path / name
        chunk = bytes(MIB)
        with open(filler, "ab", buffering=0) as handle:
            for _ in range(8192):  # bounded: no test disk is that large
                try:
                    handle.write(chunk)
                except OSError:  # ENOSPC: nothing more fits
                    break
        return filler

    def unmount(self) -> None:
        result = subprocess.run(["umount", str(self.path)], capture_output=True, text=True)
        if result.returncode != 0:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, text=True)


def _mount(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *map(str, args)], capture_output=True, text=True, timeout=30)


def write_random(path: Path, size: int) -> Path:
    """`size` bytes that neither compress nor deduplicate."""
    with open(path, "wb") as handle:
        for _ in range(size // MIB):
            handle.write(os.urandom(MIB))
    return path
