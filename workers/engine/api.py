"""The engine's operations: backup, restore, list_points, verify, prune.

These are what the command line and the Celery agent call. Every failure is an `EngineError`
whose message is one sentence; see `workers.engine.errors`.
"""

from __future__ import annotations

from workers.engine.backup import MODES, NEWEST, BackupResult, backup
from workers.engine.errors import EngineError
from workers.engine.history import PointInfo, list_points, point_ids
from workers.engine.prune import PruneReport, prune
from workers.engine.restore import RestoreResult, restore
from workers.engine.verify import VerifyReport, verify

__all__ = [
    "MODES",
    "NEWEST",
    "BackupResult",
    "EngineError",
    "PointInfo",
    "PruneReport",
    "RestoreResult",
    "VerifyReport",
    "backup",
    "list_points",
    "point_ids",
    "prune",
    "restore",
    "verify",
]
