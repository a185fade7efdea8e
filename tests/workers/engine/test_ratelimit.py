"""--rate-limit-mbps holds: bytes written to the repository stay within the limit +5 % over any
2-second window."""

import os
import threading
import time

from tests.workers.engine.helpers import MIB
from workers.engine import backup, fs
from workers.engine.ratelimit import RateLimiter


def _record_writes(monkeypatch) -> list[tuple[float, int]]:
    writes: list[tuple[float, int]] = []
    lock = threading.Lock()
    original = fs.write_all

    def recording(fd, data):
        original(fd, data)
        with lock:
            writes.append((time.monotonic(), len(data)))

    monkeypatch.setattr(fs, "write_all", recording)
    return writes


def _worst_window(writes, window=2.0) -> int:
    """The most bytes finished within any `window` seconds."""
    worst, start, in_window = 0, 0, 0
    for end in range(len(writes)):
        in_window += writes[end][1]
        while writes[end][0] - writes[start][0] > window:
            in_window -= writes[start][1]
            start += 1
        worst = max(worst, in_window)
    return worst


def test_backup_writes_stay_within_the_limit(tmp_path, monkeypatch):
    source = tmp_path / "disk.img"
    source.write_bytes(os.urandom(10 * MIB))  # incompressible: what is read is what is written
    writes = _record_writes(monkeypatch)
    mbps = 24  # 3 MB/s: about 3.5 s of writing
    started = time.monotonic()
    result = backup(tmp_path / "repo", "job", source, "full", rate_limit_mbps=mbps)
    elapsed = time.monotonic() - started

    rate = mbps * 1_000_000 / 8
    total = sum(size for _, size in writes)
    assert total >= result.stored_size >= 10 * MIB
    assert _worst_window(writes) <= 2 * rate * 1.05
    assert elapsed >= total / rate * 0.95  # the limit is what made it take this long
    assert elapsed <= total / rate + 2  # and it does not crawl far below it


def test_limiter_shared_by_threads_holds_the_rate():
    limiter = RateLimiter(8)  # 1 MB/s
    stamps: list[tuple[float, int]] = []
    lock = threading.Lock()

    def writer():
        for _ in range(25):
            limiter.acquire(limiter.piece_size)
            with lock:
                stamps.append((time.monotonic(), limiter.piece_size))

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    assert _worst_window(stamps) <= 2 * 1_000_000 * 1.05
    assert limiter.piece_size <= 0.05 * 1_000_000


def test_unlimited_backup_is_not_throttled(tmp_path):
    source = tmp_path / "disk.img"
    source.write_bytes(os.urandom(8 * MIB))
    result = backup(tmp_path / "repo", "job", source, "full", rate_limit_mbps=0)
    assert result.duration_seconds < 2
