"""POST/GET/PUT /backups: the seed's fields, defaults and choices."""

from flask import current_app
from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from app.i18n import t
from app.models import COMPRESSIONS, ENCRYPTIONS, JOB_MODES, JOB_STATUSES, SCHEDULE_TYPES
from app.schemas.common import (
    ABSOLUTE_PATH_PATTERN,
    AbsolutePath,
    CursorPageArgsSchema,
    Id,
    Int,
    Name,
    NonEmptySchema,
    StrictSchema,
    UserRefSchema,
)
from app.services.job_health import HEALTH_STATES
from app.services.schedule import ScheduleError, parse_schedule


def validate_mail_list(value: str) -> None:
    """`a@x.com, b@y.org`: one or more addresses, comma-separated."""
    check = validate.Email()
    addresses = [a.strip() for a in value.split(",")]
    for address in addresses:
        try:
            check(address)
        except ValidationError:
            raise ValidationError(t("email_list_invalid", value=address)) from None


class ScheduleSchema(StrictSchema):
    type = fields.String(required=True, validate=validate.OneOf(SCHEDULE_TYPES))
    description = fields.String(required=True, validate=validate.Length(min=1, max=128))
    timezone = fields.String(validate=validate.Length(min=1, max=64))

    @validates_schema
    def _parses(self, data, **kwargs):
        if "type" not in data or "description" not in data:
            return  # the missing field is already reported
        try:
            parse_schedule(data["type"], data["description"], self._timezone(data))
        except ScheduleError as exc:
            raise ValidationError({exc.field: [exc.message]}) from None

    @post_load
    def _to_schedule(self, data, **kwargs):
        return parse_schedule(data["type"], data["description"], self._timezone(data))

    @staticmethod
    def _timezone(data) -> str:
        return data.get("timezone") or current_app.config["ZDM_TIMEZONE"]


class RepositoryRefSchema(StrictSchema):
    id = Id(required=True)
    type = fields.String(required=True, validate=validate.Length(min=1, max=16))
    path = fields.String(
        required=True,
        validate=validate.Length(min=1, max=1024),
        metadata={"pattern": ABSOLUTE_PATH_PATTERN, "description": "The repository's path"},
    )


_mail = fields.String(validate=[validate.Length(min=3, max=2000), validate_mail_list])


# The seed's request (../shared/seed/post-backups.md): the example of POST /backups.
SEED_REQUEST_EXAMPLE = {
    "center": "CENTER-001",
    "server": "web-server-01",
    "type": "full",
    "partition": ["/dev/sda1"],
    "repository": {"id": 1, "type": "local", "path": "/backup/storage"},
    "jobName": "daily-backup-web",
    "user": "admin@example.com",
    "schedule": {"type": "daily", "description": "0 2 * * *"},
}


class BackupCreateSchema(StrictSchema):
    center = fields.String(
        required=True,
        validate=validate.Length(min=1, max=128),
        metadata={"description": "Center id or name"},
    )
    server = fields.String(
        required=True,
        validate=validate.Length(min=1, max=128),
        metadata={"description": "Server id or name, within the center"},
    )
    type = fields.String(required=True, validate=validate.OneOf(JOB_MODES))
    partition = fields.List(
        fields.String(validate=validate.Length(min=1, max=255)),
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": 'Partitions to back up; "all" for every partition of the server'},
    )
    repository = fields.Nested(RepositoryRefSchema, required=True)
    jobName = Name(required=True)
    user = fields.String(
        required=True,
        validate=validate.Length(min=1, max=254),
        metadata={"description": "User id or e-mail"},
    )
    schedule = fields.Nested(ScheduleSchema, required=True)
    description = fields.String(validate=validate.Length(max=1000))
    rotation = Int(load_default=7, validate=validate.Range(min=1, max=365))
    compression = fields.String(validate=validate.OneOf(COMPRESSIONS))
    encryption = fields.String(load_default="none", validate=validate.OneOf(ENCRYPTIONS))
    excludeDir = fields.List(AbsolutePath(validate=validate.Length(max=1024)), load_default=list)
    excludePartition = fields.List(
        fields.String(validate=validate.Length(min=1, max=255)), load_default=list
    )
    mailEvent = _mail
    networkLimit = Int(load_default=0, validate=validate.Range(min=0, max=1_000_000))
    autoStart = fields.String(load_default="yes", validate=validate.OneOf(["yes", "no"]))


class BackupUpdateSchema(NonEmptySchema):
    """PUT /backups/{id}: only the fields given change (at least one). `null` clears an
    optional field."""

    jobName = Name()
    schedule = fields.Nested(ScheduleSchema)
    rotation = Int(validate=validate.Range(min=1, max=365))
    compression = fields.String(allow_none=True, validate=validate.OneOf(COMPRESSIONS))
    encryption = fields.String(validate=validate.OneOf(ENCRYPTIONS))
    excludeDir = fields.List(AbsolutePath(validate=validate.Length(max=1024)))
    mailEvent = fields.String(
        allow_none=True, validate=[validate.Length(min=3, max=2000), validate_mail_list]
    )
    networkLimit = Int(validate=validate.Range(min=0, max=1_000_000))
    description = fields.String(allow_none=True, validate=validate.Length(max=1000))


class ScheduleViewSchema(StrictSchema):
    basic = fields.String()
    advanced = fields.String()


class RegistrationResultSchema(StrictSchema):
    state = fields.String(metadata={"description": "success | fail"})
    jobName = fields.String()
    partition = fields.String()
    jobMode = fields.String()
    autoStart = fields.String()
    schedule = fields.Nested(ScheduleViewSchema)
    errorMessage = fields.String(allow_none=True)
    id = fields.Integer(allow_none=True)
    nextRunAt = fields.String(allow_none=True)


class SummarySchema(StrictSchema):
    total = fields.Integer()
    successful = fields.Integer()
    failed = fields.Integer()


class RegistrationSchema(StrictSchema):
    results = fields.List(fields.Nested(RegistrationResultSchema))
    summary = fields.Nested(SummarySchema)


class RegistrationFailureSchema(StrictSchema):
    """409 when no partition could be registered: the error envelope (`success: false`,
    `error`) carrying `data` and `message` as 201 and 207 do."""

    success = fields.Boolean(metadata={"example": False})
    requestID = fields.String()
    error = fields.String(metadata={"description": "One clear sentence (the same as `message`)"})
    data = fields.Nested(RegistrationSchema, metadata={"description": "Why each partition failed"})
    message = fields.String()
    timestamp = fields.String()


# ---- the job as GET /backups shows it --------------------------------------------------


class _Ref(StrictSchema):
    id = fields.Integer()
    name = fields.String()


class _TimeSchema(StrictSchema):
    start = fields.String(allow_none=True)
    elapsed = fields.Integer(allow_none=True, metadata={"description": "seconds"})
    end = fields.String(allow_none=True)


class _StatusSchema(StrictSchema):
    current = fields.String(metadata={"description": " | ".join(JOB_STATUSES)})
    health = fields.String(
        metadata={
            "description": "ok | late | inactive. `late`: the job's schedule is active and its "
            "last success (or, never succeeded, its first fire time after registration) is "
            "older than twice its interval, the gap between its last two fire times. "
            "`inactive`: the schedule is stopped (or a one-off job has run).",
            "enum": list(HEALTH_STATES),
        }
    )
    lastSuccessAt = fields.String(
        allow_none=True, metadata={"description": "When its last successful run finished"}
    )
    time = fields.Nested(_TimeSchema)


class _JobScheduleSchema(StrictSchema):
    type = fields.String()
    basic = fields.String()
    advanced = fields.String()
    timezone = fields.String()
    nextRunAt = fields.String(allow_none=True)


class _JobInfoSchema(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    mode = fields.String()
    partition = fields.String()
    schedule = fields.Nested(_JobScheduleSchema)
    status = fields.Nested(_StatusSchema)


class _JobSchema(StrictSchema):
    info = fields.Nested(_JobInfoSchema)
    lastUpdated = fields.String()


class _RepositoryViewSchema(StrictSchema):
    id = fields.Integer()
    type = fields.String()
    path = fields.String()


class _OptionsSchema(StrictSchema):
    autoStart = fields.String()
    rotation = fields.Integer()
    compression = fields.String(allow_none=True)
    encryption = fields.String()
    excludeDir = fields.List(fields.String())
    mailEvent = fields.String(allow_none=True)
    networkLimit = fields.Integer()
    description = fields.String(allow_none=True)
    user = fields.Nested(_Ref)


class BackupJobSchema(StrictSchema):
    center = fields.Nested(_Ref)
    system = fields.Nested(_Ref)
    job = fields.Nested(_JobSchema)
    repository = fields.Nested(_RepositoryViewSchema)
    options = fields.Nested(_OptionsSchema)
    createdBy = fields.Nested(
        UserRefSchema,
        allow_none=True,
        metadata={"description": "Who registered the job (null once that user is deleted)"},
    )


class UpdatedFieldSchema(StrictSchema):
    field = fields.String()
    previous = fields.Raw(allow_none=True)
    new = fields.Raw(allow_none=True)


class BackupUpdateResultSchema(StrictSchema):
    updatedFields = fields.List(fields.Nested(UpdatedFieldSchema))
    backup = fields.Nested(BackupJobSchema)


class BackupListArgsSchema(CursorPageArgsSchema):
    center = fields.String()
    server = fields.String()
    jobName = fields.String()
    mode = fields.String(validate=validate.OneOf(JOB_MODES))
    partition = fields.String()
    status = fields.String(validate=validate.OneOf(JOB_STATUSES))
    repositoryID = Id(strict=False)
    health = fields.String(
        validate=validate.OneOf(HEALTH_STATES),
        metadata={"description": "`late`: jobs whose backups stopped happening (see `health`)"},
    )


class BackupDeleteArgsSchema(StrictSchema):
    purge = fields.Boolean(load_default=False)
