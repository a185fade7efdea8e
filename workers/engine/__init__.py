"""The ZDM backup engine: block (and later directory) backups into a local repository.

It imports neither Flask nor Celery. Use it from Python::

    from workers.engine import backup, restore, list_points, verify, prune

or from the command line: `python -m workers.engine --help`.
The repository format is described in docs/repository-format.md.
"""

from workers.engine.api import (
    BackupResult,
    PruneReport,
    RestoreResult,
    VerifyReport,
    backup,
    list_points,
    point_ids,
    prune,
    restore,
    verify,
)
from workers.engine.errors import (
    BackupCanceled,
    DataCorrupted,
    EngineError,
    InvalidArgument,
    KeyInvalid,
    KeyMissing,
    NotARepository,
    ObjectMissing,
    OperationCanceled,
    PointExists,
    PointNotFound,
    RepositoryLocked,
    RestoreCanceled,
    SourceError,
    StorageError,
    TargetError,
)
from workers.engine.history import PointInfo
from workers.engine.keys import generate_master_key
from workers.engine.settings import MASTER_KEY_ENV

__all__ = [
    "MASTER_KEY_ENV",
    "BackupCanceled",
    "BackupResult",
    "DataCorrupted",
    "EngineError",
    "InvalidArgument",
    "KeyInvalid",
    "KeyMissing",
    "NotARepository",
    "ObjectMissing",
    "OperationCanceled",
    "PointExists",
    "PointInfo",
    "PointNotFound",
    "PruneReport",
    "RepositoryLocked",
    "RestoreCanceled",
    "RestoreResult",
    "SourceError",
    "StorageError",
    "TargetError",
    "VerifyReport",
    "backup",
    "generate_master_key",
    "list_points",
    "point_ids",
    "prune",
    "restore",
    "verify",
]
