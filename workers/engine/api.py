"""What the engine can do: the operations the command line and the Celery agent call.

    operation    module       what it does                                       returns
    backup       backup.py    backs up a device, image file or directory into a  BackupResult
                              new recovery point (full or incremental)
    restore      restore.py   writes a point's data to a file, a device or an    RestoreResult
                              empty directory
    list_points  history.py   the points (of one job, or all), oldest first      list[PointInfo]
    point_ids    history.py   the id of every point file present, readable or    set[str]
                              not
    verify       verify.py    checks point files and the objects they need,      VerifyReport
                              reading a share of the objects in full
    prune        prune.py     keeps a job's newest points, deletes the others    PruneReport
                              and every pack nothing needs any more

What they stand on: `repository.py` (the directory, its config and keys), `points.py` (point
files), `packs.py` and `objects.py` (stored data), `block.py` and `directory.py` (the two kinds
of source), `operations.py` (working directories and claims), `locks.py`, `fs.py`,
`settings.py` (the environment variables), `errors.py`. The format is docs/repository-format.md.

Every failure is an `EngineError` whose message is one sentence; see `workers.engine.errors`.
The package `workers.engine` exports the same names. There, `workers.engine.backup` (like
`restore`, `verify` and `prune`) is the function, not its module: import from the module
(`from workers.engine.backup import NEWEST`) or use `importlib.import_module` to reach it.
"""

from __future__ import annotations

from workers.engine.backup import MODES, NEWEST, BackupResult, backup
from workers.engine.errors import EngineError
from workers.engine.history import PointInfo, list_points, point_ids
from workers.engine.prune import PruneReport, prune
from workers.engine.restore import RestoreResult, restore
from workers.engine.verify import VerifyReport, verify

# The engine's version, which agents report with their master key's fingerprint
# (`keys.configured_key_fingerprint`); the formats of docs/repository-format.md are version 1.
ENGINE_VERSION = "1.0"

__all__ = [
    "MODES",
    "NEWEST",
    "ENGINE_VERSION",
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
