"""The ZDM backup engine: block devices, image files and directories backed up into a local
repository, restored, verified and pruned.

It imports neither Flask, Celery, SQLAlchemy nor the service's `app`. Use it from Python::

    from workers.engine import backup, restore, list_points, verify, prune

or from the command line: `python -m workers.engine --help`. `workers/engine/api.py` lists the
operations and the module of each; the repository format is docs/repository-format.md; the
environment variables it reads are in `workers/engine/settings.py`.
"""

from workers.engine.api import (
    ENGINE_VERSION,
    BackupResult,
    PointInfo,
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
from workers.engine.keys import configured_key_fingerprint, generate_master_key
from workers.engine.settings import MASTER_KEY_ENV

__all__ = [
    "ENGINE_VERSION",
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
    "configured_key_fingerprint",
    "generate_master_key",
    "list_points",
    "point_ids",
    "prune",
    "restore",
    "verify",
]
