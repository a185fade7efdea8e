"""Centers, servers with their partitions, repositories, users and tokens."""

from flask import current_app
from marshmallow import ValidationError, fields, validate, validates, validates_schema

from app.i18n import t
from app.models import PARTITION_KINDS, ROLES
from app.schemas.common import (
    MAX_BIGINT,
    AbsolutePath,
    Int,
    Name,
    RepositoryPath,
    StrictSchema,
    UserRefSchema,
)

Ref = fields.String  # an id or a name, as the seed writes `center` and `server`


class CenterCreateSchema(StrictSchema):
    name = Name(required=True)
    description = fields.String(validate=validate.Length(max=1000), allow_none=True)


class CenterSchema(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String(allow_none=True)


class CenterRefSchema(StrictSchema):
    id = fields.Integer()
    name = fields.String()


class PartitionSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=255))
    mountpoint = AbsolutePath(allow_none=True, validate=validate.Length(max=1024))
    kind = fields.String(required=True, validate=validate.OneOf(PARTITION_KINDS))
    size = Int(
        allow_none=True,
        validate=validate.Range(min=0, max=MAX_BIGINT),
        metadata={"description": "Bytes"},
    )


class ServerCreateSchema(StrictSchema):
    name = Name(required=True)
    center = Ref(required=True, metadata={"description": "Center id or name"})
    description = fields.String(validate=validate.Length(max=1000), allow_none=True)
    partitions = fields.List(fields.Nested(PartitionSchema), load_default=list)


class AgentCapabilitiesSchema(StrictSchema):
    engineVersion = fields.String(metadata={"description": "the agent's backup engine"})
    masterKeyFingerprint = fields.String(
        allow_none=True,
        metadata={"description": "a short fingerprint of its master key (never the key); "
                  "null: the agent has no key, it cannot make encrypted backups"},
    )  # fmt: skip


class ServerSchema(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    center = fields.Nested(CenterRefSchema)
    description = fields.String(allow_none=True)
    online = fields.Boolean()
    lastSeen = fields.String(allow_none=True)
    agent = fields.Nested(
        AgentCapabilitiesSchema,
        allow_none=True,
        metadata={"description": "what the server's agent reported; null: it never reported"},
    )
    partitions = fields.List(fields.Nested(PartitionSchema))


class PartitionListSchema(StrictSchema):
    server = fields.Nested(CenterRefSchema)
    partitions = fields.List(fields.Nested(PartitionSchema))


def check_verify_schedule(expression: str | None) -> None:
    """A five-field cron expression, parsed by the library that fires it."""
    from app.services.schedule import ScheduleError, parse_schedule

    if expression is None:
        return
    try:
        parse_schedule("custom", expression, current_app.config["ZDM_TIMEZONE"])
    except ScheduleError as error:
        raise ValidationError(str(error)) from None


class VerifySettingsSchema(StrictSchema):
    verifySchedule = fields.String(
        allow_none=True,
        validate=validate.Length(min=1, max=128),
        metadata={"description": "cron: verify the repository on this schedule (null: never)"},
    )
    verifyReadData = Int(
        validate=validate.Range(min=0, max=100),
        metadata={"description": "percent of objects read and decoded by scheduled runs"},
    )

    @validates("verifySchedule")
    def _cron(self, value, **_kwargs):
        check_verify_schedule(value)


class RepositoryCreateSchema(VerifySettingsSchema):
    center = Ref(required=True, metadata={"description": "Center id or name"})
    type = fields.String(required=True, validate=validate.OneOf(["local"]))
    path = RepositoryPath(required=True, validate=validate.Length(min=1, max=1024))


class RepositoryUpdateSchema(VerifySettingsSchema):
    @validates_schema
    def _not_empty(self, data, **_kwargs):
        if not data:  # an empty change is a mistake, not a no-op
            raise ValidationError(t("no_fields"))


class RepositorySchema(StrictSchema):
    id = fields.Integer()
    center = fields.Nested(CenterRefSchema)
    type = fields.String()
    path = fields.String()
    verifySchedule = fields.String(allow_none=True)
    verifyReadData = fields.Integer()
    verifyNextAt = fields.String(allow_none=True)
    lastVerifiedAt = fields.String(allow_none=True)


class VerifyRequestSchema(StrictSchema):
    readData = fields.Float(
        load_default=0,
        validate=validate.Range(min=0, max=100),
        metadata={
            "description": "percent of the objects to read and decode fully (0: structure only)"
        },
    )


class VerificationSchema(StrictSchema):
    id = fields.Integer()
    repository = fields.Integer()
    server = fields.Nested(CenterRefSchema, allow_none=True)
    trigger = fields.String(metadata={"description": "manual | schedule"})
    readData = fields.Integer()
    state = fields.String(metadata={"description": "queued | running | success | failed"})
    queuedAt = fields.String()
    startedAt = fields.String(allow_none=True)
    finishedAt = fields.String(allow_none=True)
    pointsChecked = fields.Integer()
    objectsChecked = fields.Integer()
    problems = fields.List(fields.String())
    damagedPoints = fields.List(fields.Integer(), metadata={"description": "recovery point ids"})
    errorMessage = fields.String(allow_none=True)
    requestedBy = fields.Nested(UserRefSchema, allow_none=True)


class UserCreateSchema(StrictSchema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=8, max=1024)
    )
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class UserSchema(StrictSchema):
    id = fields.Integer()
    email = fields.String()
    role = fields.String()
    disabled = fields.Boolean(
        metadata={"description": "A disabled user can neither log in nor use a token"}
    )
    createdAt = fields.String()


class UserTokensRevokedSchema(StrictSchema):
    user = fields.Nested(UserSchema)
    revokedTokens = fields.Integer(metadata={"description": "How many live tokens were revoked"})


class TokenIssueSchema(StrictSchema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=1, max=1024)
    )


class TokenSchema(StrictSchema):
    token = fields.String(
        allow_none=True,
        metadata={"description": "Shown once; store it safely (null in the answer to /revoke)"},
    )
    expiresAt = fields.String()


class HealthSchema(StrictSchema):
    database = fields.String(metadata={"example": "ok"})
    redis = fields.String(metadata={"example": "ok"})
