"""Centers, servers with their partitions, repositories, users and tokens."""

from marshmallow import fields, validate

from app.models import PARTITION_KINDS, ROLES
from app.schemas.common import (
    MAX_BIGINT,
    AbsolutePath,
    Int,
    Name,
    RepositoryPath,
    StrictSchema,
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


class ServerSchema(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    center = fields.Nested(CenterRefSchema)
    description = fields.String(allow_none=True)
    online = fields.Boolean()
    lastSeen = fields.String(allow_none=True)
    partitions = fields.List(fields.Nested(PartitionSchema))


class PartitionListSchema(StrictSchema):
    server = fields.Nested(CenterRefSchema)
    partitions = fields.List(fields.Nested(PartitionSchema))


class RepositoryCreateSchema(StrictSchema):
    center = Ref(required=True, metadata={"description": "Center id or name"})
    type = fields.String(required=True, validate=validate.OneOf(["local"]))
    path = RepositoryPath(required=True, validate=validate.Length(min=1, max=1024))


class RepositorySchema(StrictSchema):
    id = fields.Integer()
    center = fields.Nested(CenterRefSchema)
    type = fields.String()
    path = fields.String()


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
    token = fields.String(metadata={"description": "Shown once; store it safely"})
    expiresAt = fields.String()


class HealthSchema(StrictSchema):
    database = fields.String(metadata={"example": "ok"})
    redis = fields.String(metadata={"example": "ok"})
