"""Helpers for the backup engine's tests: real image files, hashes, the command line."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

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
