"""The engine's exceptions: one type per kind of failure, each with a one-sentence message.

Callers (the command line, the Celery agent) catch `EngineError` and show `str(error)`.
`storage_errors` turns the operating system's errors on the repository side into one.
"""

import contextlib


class EngineError(Exception):
    """Base class of every failure the engine reports; `str()` is one clear sentence."""


class InvalidArgument(EngineError):
    """A caller passed an option the engine cannot honour (unknown mode, codec, ...)."""


class NotARepository(EngineError):
    """The repository path does not hold a ZDM repository (or holds a newer format)."""


class RepositoryLocked(EngineError):
    """A lock on the repository could not be taken within the allowed time."""


class KeyMissing(EngineError):
    """Encrypted data is involved and no master key was given (`ZDM_MASTER_KEY`)."""


class KeyInvalid(EngineError):
    """The master key is malformed or does not open this repository's data key."""


class PointNotFound(EngineError):
    """No recovery point with the requested id exists."""


class PointExists(EngineError):
    """A new point's id is taken already (two backups chose the same id): nothing published."""


class DataCorrupted(EngineError):
    """Stored data is damaged; `name` says which object or point file."""

    def __init__(self, message: str, name: str = ""):
        super().__init__(message)
        self.name = name


class ObjectMissing(DataCorrupted):
    """A point needs an object that is not in the repository."""


class SourceError(EngineError):
    """The backup source cannot be read or is of an unsupported kind."""


class TargetError(EngineError):
    """The restore target cannot be written or is too small."""


class OperationCanceled(EngineError):
    """`should_cancel()` returned True; nothing partial is visible."""


class BackupCanceled(OperationCanceled):
    """A backup stopped on request; no recovery point was created."""


class RestoreCanceled(OperationCanceled):
    """A restore stopped on request; a regular-file target was left untouched."""


class StorageError(EngineError):
    """Reading or writing the repository failed (disk full, permissions, I/O error)."""


@contextlib.contextmanager
def storage_errors(action: str):
    """Turn OS errors on the repository side into one-sentence StorageErrors."""
    try:
        yield
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        raise StorageError(f"{action} failed: {error.strerror}{where}.") from None
