"""The `--rate-limit-mbps` limiter: a token bucket shared by every writer thread.

Implemented as GCRA (a token bucket expressed in time): each grant of n bytes pushes the
"theoretical arrival time" forward by n / rate, and a writer sleeps until that time minus the
burst tolerance. The burst is 3 % of one second's budget and every write is cut into pieces no
larger than the burst, so any window of T seconds carries at most rate * T + 6 % of one
second's budget: within the promised +5 % over any 2-second window.
"""

from __future__ import annotations

import threading
import time

BURST_FRACTION = 0.03
MAX_PIECE = 64 * 1024


class RateLimiter:
    def __init__(self, megabits_per_second: float):
        self.rate = megabits_per_second * 1_000_000 / 8  # bytes per second
        self.burst = max(512, int(self.rate * BURST_FRACTION))
        self.piece_size = max(512, min(MAX_PIECE, self.burst))
        self._tolerance = self.burst / self.rate
        self._tat = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self, size: int) -> None:
        """Block until `size` more bytes may be written."""
        with self._lock:
            now = time.monotonic()
            self._tat = max(self._tat, now) + size / self.rate
            wait = self._tat - self._tolerance - now
        if wait > 0:
            time.sleep(wait)


def make_limiter(megabits_per_second: float | None) -> RateLimiter | None:
    if not megabits_per_second or megabits_per_second <= 0:
        return None
    return RateLimiter(megabits_per_second)
