"""While a backup or restore runs: publish its progress and keep its lease alive.

A thread writes the latest progress and a heartbeat to the run's row every few seconds
with its own connection, and reads the row's state back: `canceling` (or a deleted row)
tells the engine to stop at its next safe point. The sweeper declares a run whose
heartbeat is older than the lease lost ("worker lost").
"""

from __future__ import annotations

import logging
import os
import threading

from flask import current_app
from sqlalchemy import Table, select, update

from app.extensions import db
from app.timeutil import utcnow

log = logging.getLogger(__name__)

LEASE_SECONDS = float(os.environ.get("ZDM_RUN_LEASE_SECONDS", 60))
HEARTBEAT_SECONDS = max(0.5, min(5.0, LEASE_SECONDS / 4))


class ProgressMonitor(threading.Thread):
    def __init__(self, table: Table, row_id: int, bytes_column: str):
        super().__init__(name=f"zdm-progress-{row_id}", daemon=True)
        self.table, self.row_id, self.bytes_column = table, row_id, bytes_column
        self.stopped = threading.Event()
        self.cancel_requested = threading.Event()
        self._latest = (0, 0, 0.0)
        self.app = current_app._get_current_object()  # the thread needs its own app context

    # the engine's callbacks
    def progress(self, done: int, total: int, speed: float) -> None:
        self._latest = (done, total, speed)

    def should_cancel(self) -> bool:
        return self.cancel_requested.is_set()

    def run(self) -> None:
        with self.app.app_context():
            while not self.stopped.wait(HEARTBEAT_SECONDS):
                try:
                    self.publish()
                except Exception as exc:  # a database hiccup must not kill the backup
                    log.warning("publishing progress failed: %s", exc)

    def publish(self) -> None:
        done, total, speed = self._latest
        values = {"heartbeat_at": utcnow(), self.bytes_column: done, "speed": float(speed)}
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
