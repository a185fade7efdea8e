"""The engine's exceptions: one type per kind of failure, each with a one-sentence message.

Callers (the command line, the Celery agent) catch `EngineError` and show `str(error)`.
`storage_errors` turns the operating system's errors on the repository side into one.
"""

import contextlib
import errno
import os


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


# What an operator can do about these: free space, or make the file system writable again.
_FULL = (errno.ENOSPC, errno.EDQUOT)
_READ_ONLY = (errno.EROFS,)
UNWRITABLE = _FULL + _READ_ONLY  # the repository takes no write at all


@contextlib.contextmanager
def storage_errors(action: str, repository: str | os.PathLike | None = None):
    """Turn OS errors on the repository side into one-sentence StorageErrors.

    A full or read-only repository is said so in words, naming the repository (`repository`,
    its path), because the operating system's error often names no file (a failed write).
    """
    try:
        yield
    except OSError as error:
        raise StorageError(storage_message(action, error, repository)) from None


def storage_message(action: str, error: OSError, repository=None) -> str:
    """The sentence of `storage_errors`: `action` failed, and why."""
    named = f" {os.fspath(repository)}" if repository is not None else ""
    if error.errno in _FULL:
        return (
            f"{action} failed: the repository{named} is full ({error.strerror}); "
            f"free space, then run again."
        )
    if error.errno in _READ_ONLY:
        return (
            f"{action} failed: the repository{named} is read-only ({error.strerror}); "
            f"make it writable, then run again."
        )
    if error.filename:
        return f"{action} failed: {error.strerror} ({error.filename})."
    return f"{action} failed: {error.strerror}{f' (in{named})' if named else ''}."
