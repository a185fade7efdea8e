"""While a backup or restore runs: publish its progress and renew its lease.

A thread writes the latest progress and renews the lease (`heartbeat_at`) of the run's row
every `lease_renew_seconds()` with its own connection, and reads the row's state back:
`canceling` (or a deleted row) tells the engine to stop at its next safe point. The control
worker declares a run whose lease ran out lost ("worker lost"); the rules are in
`app/services/run_lifecycle.py`.

The lease is stamped with the database's clock (`db_now`), never the agent's: an agent whose
clock is hours off is judged by the same clock as everyone else. It is renewed for the whole
run, rotation included; after the engine's part, `hold()` stops publishing progress (the
runner records the true totals) but keeps the lease; once it returns, no progress of this
lease is written any more.

What it publishes is the engine's report (`workers/engine/progress.py`): `percent` from the
bytes done of the total, `speed` the current speed (the runner records the average when the
run ends), and the counts the caller maps to its columns: a backup's `bytes_read` and
`bytes_written`, a restore's `bytes_restored` (the bytes done).

(The engine's own `workers/engine/progress.py` measures progress; this module reports it.)
"""

from __future__ import annotations

import contextvars
import logging
import threading

from flask import current_app
from sqlalchemy import Table, select, update

from app.database import db_now
from app.extensions import db
from app.services.run_lifecycle import lease_renew_seconds

log = logging.getLogger(__name__)


class RunLease(threading.Thread):
    """Used as `with RunLease(...) as lease:` around the engine's work; hands the engine its
    `progress` and `should_cancel` callbacks."""

    def __init__(self, table: Table, row_id: int, columns: dict[str, str]):
        """`columns`: which of the report's counts (`done`, `read`, `written`) go to which
        column of the row, e.g. `{"read": "bytes_read", "written": "bytes_written"}`."""
        super().__init__(name=f"zdm-lease-{row_id}", daemon=True)
        self.table, self.row_id, self.columns = table, row_id, columns
        self.stopped = threading.Event()
        self.cancel_requested = threading.Event()
        self._latest: dict | None = {"done": 0, "total": 0, "speed": 0.0, "read": 0, "written": 0}
        self._publishing = threading.Lock()  # hold() waits for a publish under way
        self.app = current_app._get_current_object()  # the thread needs its own app context
        self._context = contextvars.copy_context()  # its lines name the run, as the run's do

    # the engine's callbacks
    def progress(self, done: int, total: int, speed: float, read: int, written: int) -> None:
        self._latest = {"done": done, "total": total, "speed": speed, "read": read,
                        "written": written}  # fmt: skip

    def should_cancel(self) -> bool:
        return self.cancel_requested.is_set()

    def hold(self) -> None:
        """From now on only keep the lease: the engine's work is done and the caller records
        its totals. A publish under way ends first, so it never overwrites them."""
        with self._publishing:
            self._latest = None

    def run(self) -> None:
        self._context.run(self._renew)

    def _renew(self) -> None:
        interval = lease_renew_seconds()
        with self.app.app_context():
            while not self.stopped.wait(interval):
                try:
                    self.publish()
                except Exception as exc:  # a database hiccup must not kill the backup
                    log.warning("publishing progress failed: %s", exc)

    def publish(self) -> None:
        with self._publishing:
            self._publish()

    def _publish(self) -> None:
        values = {"heartbeat_at": db_now()}
        latest = self._latest
        if latest is not None:
            values.update({column: latest[count] for count, column in self.columns.items()})
            values["speed"] = float(latest["speed"])
            if latest["total"]:
                done, total = latest["done"], latest["total"]
                values.update(bytes_total=total, percent=min(100.0, 100.0 * done / total))
        table = self.table
        with db.engine.begin() as conn:
            conn.execute(update(table).where(table.c.id == self.row_id).values(**values))
            state = conn.execute(select(table.c.state).where(table.c.id == self.row_id)).scalar()
        if state != "running":  # canceling, deleted, or declared lost by the sweeper
            self.cancel_requested.set()

    def __enter__(self) -> RunLease:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.join(timeout=10)
