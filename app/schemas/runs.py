"""Runs, recovery points and restores."""

from marshmallow import ValidationError, fields, validate

from app.models import RUN_STATES, RUN_TRIGGERS
from app.schemas.backups import BackupJobSchema
from app.schemas.common import (
    ABSOLUTE_PATH_PATTERN,
    CursorPageArgsSchema,
    Id,
    StrictSchema,
    UserRefSchema,
)
from app.services.restore_policy import MAX_TARGET_LENGTH, RestoreRefused, normalised_target


class _JobRef(StrictSchema):
    id = fields.Integer()
    name = fields.String()


class _DeletableJobRef(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    deleted = fields.Boolean(
        metadata={"description": "The job was deleted: it left /backups, its past stays"}
    )


def _requested_by(description: str) -> fields.Nested:
    return fields.Nested(UserRefSchema, allow_none=True, metadata={"description": description})


class RunSchema(StrictSchema):
    id = fields.Integer()
    job = fields.Nested(_DeletableJobRef)
    trigger = fields.String(metadata={"description": " | ".join(RUN_TRIGGERS)})
    requestedBy = _requested_by(
        "Who ran it now (`manual`); null for scheduled runs and retries, or once the user is deleted"
    )
    scheduledFor = fields.String()
    state = fields.String(metadata={"description": " | ".join(RUN_STATES)})
    startedAt = fields.String(allow_none=True)
    finishedAt = fields.String(allow_none=True)
    bytesRead = fields.Integer()
    bytesWritten = fields.Integer()
    bytesTotal = fields.Integer()
    percent = fields.Float()
    speed = fields.Integer(metadata={"description": "bytes per second"})
    errorMessage = fields.String(allow_none=True)
    log = fields.List(fields.String())


class JobActionSchema(StrictSchema):
    """What /start, /stop and /run answer: the job as it is after the action, and what the
    action did."""

    backup = fields.Nested(BackupJobSchema, metadata={"description": "The job, as GET shows it"})
    canceledRuns = fields.List(
        fields.Integer(),
        metadata={"description": "/stop: the runs it canceled or asked to stop; else empty"},
    )
    runId = fields.Integer(allow_none=True, metadata={"description": "/run: the queued run's id"})
    run = fields.Nested(
        RunSchema, allow_none=True, metadata={"description": "/run: the queued run; else null"}
    )


class MonitoringSchema(StrictSchema):
    job = fields.Nested(_JobRef)
    status = fields.String()
    inProgress = fields.Boolean(
        metadata={"description": "`run` is going now (else it is the last one, finished)"}
    )
    run = fields.Nested(
        RunSchema,
        allow_none=True,
        metadata={
            "description": "The current run; when none is going, the last run with its "
            "outcome; null for a job that never ran"
        },
    )


class HistoryArgsSchema(CursorPageArgsSchema):
    jobID = Id(strict=False)
    jobName = fields.String()
    server = fields.String()
    state = fields.String(validate=validate.OneOf(RUN_STATES))
    trigger = fields.String(validate=validate.OneOf(RUN_TRIGGERS))


class RecoveryPointSchema(StrictSchema):
    id = fields.Integer()
    runId = fields.Integer(allow_none=True)
    mode = fields.String()
    createdAt = fields.String()
    sourceSize = fields.Integer()
    storedSize = fields.Integer()
    compression = fields.String(allow_none=True)
    encrypted = fields.Boolean()
    state = fields.String(
        metadata={"description": "available | missing (its file is gone; not restorable)"}
    )
    damaged = fields.Boolean(
        metadata={"description": "a verification found an object it needs damaged or missing"}
    )


class ListedRecoveryPointSchema(RecoveryPointSchema):
    partition = fields.String()
    job = fields.Nested(
        _DeletableJobRef,
        allow_none=True,
        metadata={"description": "The job that made the point, deleted or not"},
    )


class RecoveryPointListArgsSchema(CursorPageArgsSchema):
    job = Id(strict=False, metadata={"description": "Job id; a deleted job's points too"})
    server = fields.String(metadata={"description": "Server id or name"})
    repository = Id(strict=False, metadata={"description": "Repository id"})


class RestoreTarget(fields.String):
    """An absolute, normalised path; its shape is the restore policy's first rule."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return normalised_target(super()._deserialize(value, attr, data, **kwargs))
        except RestoreRefused as refusal:
            raise ValidationError(refusal.message()) from None


class RestoreCreateSchema(StrictSchema):
    recoveryPoint = Id(required=True, metadata={"description": "Recovery point id"})
    server = fields.String(
        required=True,
        validate=validate.Length(min=1, max=128),
        metadata={"description": "Server (id or name) whose agent restores"},
    )
    target = RestoreTarget(
        required=True,
        metadata={
            "pattern": ABSOLUTE_PATH_PATTERN,
            "minLength": 1,
            "maxLength": MAX_TARGET_LENGTH,
            "description": "A new file (block point) or directory (directory point) under one "
            "of the agent's restore roots (`ZDM_RESTORE_ROOTS`); or, to restore in place "
            "(admin only, with `overwrite`), the name of a partition the server serves, such "
            "as `/dev/sda1`. Never a repository, the service's database, /proc, /sys or /dev.",
        },
    )
    overwrite = fields.Boolean(
        load_default=False,
        truthy={True},
        falsy={False},
        metadata={
            "description": "Replace an existing target; required to restore onto a partition "
            "in place"
        },
    )


class RestoreSchema(StrictSchema):
    id = fields.Integer()
    recoveryPoint = fields.Integer(allow_none=True)
    server = fields.Nested(_JobRef)
    target = fields.String()
    requestedBy = _requested_by("Who asked for the restore (null once the user is deleted)")
    state = fields.String()
    startedAt = fields.String(allow_none=True)
    finishedAt = fields.String(allow_none=True)
    bytesTotal = fields.Integer()
    bytesRestored = fields.Integer()
    percent = fields.Float()
    speed = fields.Integer()
    errorMessage = fields.String(allow_none=True)
    log = fields.List(fields.String())
