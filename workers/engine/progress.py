"""Throttled progress and cancel callbacks, so callers can publish them cheaply."""

from __future__ import annotations

import time
from collections.abc import Callable

ProgressCallback = Callable[[int, int, float], None]


class Progress:
    """Calls `callback(bytes_done, bytes_total, bytes_per_second)` at most every `interval` s."""

    def __init__(self, callback: ProgressCallback | None, total: int, interval: float = 0.25):
        self._callback = callback
        self.total = total
        self.done = 0
        self._interval = interval
        self._start = time.monotonic()
        self._last = 0.0

    def speed(self) -> float:
        elapsed = time.monotonic() - self._start
        return self.done / elapsed if elapsed > 0 else 0.0

    def advance(self, amount: int) -> None:
        self.done += amount
        if self._callback is None:
            return
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self._callback(self.done, self.total, self.speed())

    def finish(self) -> None:
        if self._callback is not None:
            self._callback(self.done, self.total, self.speed())


class CancelCheck:
    """Asks `should_cancel()` at most every `interval` seconds (it may query a database)."""

    def __init__(self, should_cancel: Callable[[], bool] | None, interval: float = 0.2):
        self._should_cancel = should_cancel
        self._interval = interval
        self._last = 0.0

    def __call__(self) -> bool:
        if self._should_cancel is None:
            return False
        now = time.monotonic()
        if now - self._last < self._interval:
            return False
        self._last = now
        return bool(self._should_cancel())
