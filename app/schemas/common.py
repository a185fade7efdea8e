"""Schemas shared by every resource: the envelopes, pagination, names and paths."""

import posixpath
import re

from flask import current_app
from marshmallow import Schema, ValidationError, fields, validate

from app.i18n import t

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class StrictSchema(Schema):
    """Unknown fields are refused (marshmallow's default, stated here on purpose)."""

    class Meta:
        unknown = "raise"
        ordered = True


def Int(**kwargs) -> fields.Integer:  # noqa: N802 (reads like a field class)
    """An integer that refuses strings and floats: `"7"` is a wrong type, not 7."""
    return fields.Integer(strict=True, **kwargs)


def validate_name(value: str) -> None:
    if value != value.strip() or _CONTROL.search(value):
        raise ValidationError(t("name_invalid"))


def Name(max_length: int = 128, **kwargs) -> fields.String:  # noqa: N802
    return fields.String(validate=[validate.Length(min=1, max=max_length), validate_name], **kwargs)


def normalise_absolute_path(value: str) -> str:
    """An absolute path, normalised; `..` is refused rather than resolved."""
    if not value.startswith("/"):
        raise ValidationError(t("path_not_absolute"))
    if ".." in value.split("/"):
        raise ValidationError(t("path_has_dotdot"))
    if _CONTROL.search(value):
        raise ValidationError(t("name_invalid"))
    # normpath keeps a leading "//" (POSIX allows it a meaning); we do not.
    return "/" + posixpath.normpath(value).lstrip("/")


class AbsolutePath(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        return normalise_absolute_path(super()._deserialize(value, attr, data, **kwargs))


class RepositoryPath(AbsolutePath):
    """An absolute path inside one of `ZDM_REPOSITORY_ROOTS`, when that allow-list is set."""

    def _deserialize(self, value, attr, data, **kwargs):
        path = super()._deserialize(value, attr, data, **kwargs)
        roots = [posixpath.normpath(r) for r in current_app.config["ZDM_REPOSITORY_ROOTS"]]
        if roots and not any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots):
            raise ValidationError(t("path_outside_roots", roots=", ".join(roots)))
        return path


class ErrorEnvelopeSchema(Schema):
    success = fields.Boolean(metadata={"example": False})
    requestID = fields.String(metadata={"example": "req-3f2a9c1b7d4e"})
    error = fields.String(metadata={"description": "One clear sentence"})
    detail = fields.Dict(
        metadata={
            "description": "Optional. For 422: `validationErrors`, a map from dotted field "
            "path to messages."
        }
    )
    timestamp = fields.String(metadata={"example": "2024-01-31T10:30:45.123Z"})


_envelopes: dict[str, type[Schema]] = {}


def envelope(data_schema: type[Schema] | Schema, name: str) -> type[Schema]:
    """The success envelope around `data_schema`, registered once under `name`."""
    if name not in _envelopes:
        _envelopes[name] = Schema.from_dict(
            {
                "success": fields.Boolean(),
                "requestID": fields.String(),
                "data": fields.Nested(data_schema),
                "message": fields.String(),
                "timestamp": fields.String(),
            },
            name=name,
        )
    return _envelopes[name]


class PaginationSchema(Schema):
    currentPage = fields.Integer()
    totalPages = fields.Integer()
    totalItems = fields.Integer()
    itemsPerPage = fields.Integer()
    hasNextPage = fields.Boolean()
    hasPreviousPage = fields.Boolean()


class PageArgsSchema(StrictSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=200))


def list_of(item_schema: type[Schema], name: str) -> type[Schema]:
    """`{items: [...], pagination: {...}}` as the `data` of a list endpoint."""
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item_schema)),
            "pagination": fields.Nested(PaginationSchema),
        },
        name=name,
    )
