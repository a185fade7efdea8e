"""While a backup or restore runs: publish its progress and keep its lease alive.

A thread writes the latest progress and a heartbeat to the run's row every few seconds
with its own connection, and reads the row's state back: `canceling` (or a deleted row)
tells the engine to stop at its next safe point. The sweeper declares a run whose
heartbeat is older than the lease lost ("worker lost").

The heartbeat is stamped with the database's clock (`db_now`), never the agent's: an agent
whose clock is hours off is judged by the same clock as everyone else. It beats for the whole
run, rotation included; after the engine's part, `hold()` stops publishing progress (the
runner has recorded the true totals) but keeps the lease.
"""

from __future__ import annotations

import logging
import os
import threading

from flask import current_app
from sqlalchemy import Table, select, update

from app.database import db_now
from app.extensions import db

log = logging.getLogger(__name__)

LEASE_SECONDS = float(os.environ.get("ZDM_RUN_LEASE_SECONDS", 60))
HEARTBEAT_SECONDS = max(0.5, min(5.0, LEASE_SECONDS / 4))


class ProgressMonitor(threading.Thread):
    def __init__(self, table: Table, row_id: int, bytes_column: str):
        super().__init__(name=f"zdm-progress-{row_id}", daemon=True)
        self.table, self.row_id, self.bytes_column = table, row_id, bytes_column
        self.stopped = threading.Event()
        self.cancel_requested = threading.Event()
        self._latest: tuple[int, int, float] | None = (0, 0, 0.0)
        self.app = current_app._get_current_object()  # the thread needs its own app context

    # the engine's callbacks
    def progress(self, done: int, total: int, speed: float) -> None:
        self._latest = (done, total, speed)

    def should_cancel(self) -> bool:
        return self.cancel_requested.is_set()

    def hold(self) -> None:
        """From now on only keep the lease: the engine's work is done and its totals recorded."""
        self._latest = None

    def run(self) -> None:
        with self.app.app_context():
            while not self.stopped.wait(HEARTBEAT_SECONDS):
                try:
                    self.publish()
                except Exception as exc:  # a database hiccup must not kill the backup
                    log.warning("publishing progress failed: %s", exc)

    def publish(self) -> None:
        values = {"heartbeat_at": db_now()}
        if self._latest is not None:
            done, total, speed = self._latest
            values.update({self.bytes_column: done, "speed": float(speed)})
            if total:
                values.update(bytes_total=total, percent=min(100.0, 100.0 * done / total))
        table = self.table
        with db.engine.begin() as conn:
            conn.execute(update(table).where(table.c.id == self.row_id).values(**values))
            state = conn.execute(select(table.c.state).where(table.c.id == self.row_id)).scalar()
        if state != "running":  # canceling, deleted, or declared lost by the sweeper
            self.cancel_requested.set()

    def __enter__(self) -> ProgressMonitor:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.join(timeout=10)
