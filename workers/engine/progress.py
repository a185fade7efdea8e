"""Throttled progress and cancel callbacks, so callers can publish them cheaply.

A progress callback is called as `callback(done, total, speed, read, written)`:
- `done`, `total`: bytes of the source (backup) or of the point (restore) dealt with so far,
  and in all: `done / total` is the share of the work done;
- `speed`: bytes of `done` per second — over the last `WINDOW` seconds while the work goes
  on (the current speed), over the whole operation in the last call (the average);
- `read`: bytes actually read from the source (a backup skips unchanged files of a directory:
  `done` counts them, `read` does not); a restore reports `done`;
- `written`: bytes written so far — to the repository for a backup (new objects, then the
  point file in the last call), to the target for a restore (`done`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

ProgressCallback = Callable[[int, int, float, int, int], None]
WINDOW = 2.0  # seconds the current speed is measured over


class Progress:
    """Calls `callback(done, total, speed, read, written)` at most every `interval` s.

    `counts()`, when given, answers `(read, written)` at that moment; otherwise both are
    `done`."""

    def __init__(
        self,
        callback: ProgressCallback | None,
        total: int,
        interval: float = 0.25,
        counts: Callable[[], tuple[int, int]] | None = None,
        window: float = WINDOW,
    ):
        self._callback = callback
        self.total = total
        self.done = 0
        self._interval = interval
        self._counts = counts
        self._window = window
        self._start = time.monotonic()
        self._last = 0.0
        self._samples: deque[tuple[float, int]] = deque([(self._start, 0)])

    def speed(self) -> float:
        """The average since the start."""
        elapsed = time.monotonic() - self._start
        return self.done / elapsed if elapsed > 0 else 0.0

    def current_speed(self, now: float) -> float:
        """Over the last `window` seconds (from the newest sample at least that old)."""
        samples = self._samples
        samples.append((now, self.done))
        while len(samples) > 2 and now - samples[1][0] >= self._window:
            samples.popleft()
        since, done_then = samples[0]
        return (self.done - done_then) / (now - since) if now > since else 0.0

    def _report(self, speed: float) -> None:
        read, written = self._counts() if self._counts is not None else (self.done, self.done)
        self._callback(self.done, self.total, speed, read, written)

    def advance(self, amount: int) -> None:
        self.done += amount
        if self._callback is None:
            return
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self._report(self.current_speed(now))

    def finish(self) -> None:
        if self._callback is not None:
            self._report(self.speed())


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
