"""Schemas shared by every resource: the envelopes, pagination, names and paths."""

import posixpath
import re
from collections.abc import Mapping

from apispec import BasePlugin
from flask import current_app
from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from app.i18n import t

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# The largest values the database columns hold: an input beyond them is a 422, never a 500.
MAX_ID = 2**31 - 1  # ids and Integer columns are 32-bit on PostgreSQL
MAX_BIGINT = 2**63 - 1  # BigInteger columns (sizes in bytes)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL, unpaired surrogates


class StrictSchema(Schema):
    """Unknown fields are refused (marshmallow's default, stated here on purpose), and so are
    strings no database can store (NUL, unpaired surrogates): one check for every field."""

    class Meta:
        unknown = "raise"
        ordered = True

    @pre_load
    def _storable_strings(self, data, **kwargs):
        if isinstance(data, Mapping):
            errors = {
                key: [t("bad_characters")] for key, value in data.items() if _unstorable(value)
            }
            if errors:
                raise ValidationError(errors)
        return data


def _unstorable(value, depth: int = 0) -> bool:
    if isinstance(value, str):
        return bool(_UNSTORABLE.search(value))
    if isinstance(value, list | tuple) and depth < 3:
        return any(_unstorable(item, depth + 1) for item in value)
    return False


def Id(strict: bool = True, **kwargs) -> fields.Integer:  # noqa: N802
    """A database id: 1 to 2^31-1."""
    return fields.Integer(strict=strict, validate=validate.Range(min=1, max=MAX_ID), **kwargs)


def Int(**kwargs) -> fields.Integer:  # noqa: N802 (reads like a field class)
    """An integer that refuses strings and floats: `"7"` is a wrong type, not 7."""
    return fields.Integer(strict=True, **kwargs)


def validate_name(value: str) -> None:
    if value != value.strip() or _CONTROL.search(value):
        raise ValidationError(t("name_invalid"))


# What validate_name and normalise_absolute_path accept, stated in the OpenAPI document
# (ECMA-262 syntax, which Python's `re` reads alike; tests/api/test_openapi.py holds them
# to the validators).
NAME_PATTERN = r"^[^\s\x00-\x1f\x7f]([^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"
ABSOLUTE_PATH_PATTERN = r"^/(?!(.*/)?\.\.(/|$))[^\x00-\x1f\x7f]*$"


def Name(max_length: int = 128, **kwargs) -> fields.String:  # noqa: N802
    return fields.String(
        validate=[validate.Length(min=1, max=max_length), validate_name],
        metadata={"pattern": NAME_PATTERN, **kwargs.pop("metadata", {})},
        **kwargs,
    )


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
    """An absolute path without `..`, normalised (`/backup//x/./` -> `/backup/x`)."""

    def __init__(self, **kwargs):
        metadata = {"pattern": ABSOLUTE_PATH_PATTERN, **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

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


class NonEmptySchema(StrictSchema):
    """A body that must name at least one field (`minProperties: 1` in the OpenAPI document,
    written there by `MinPropertiesPlugin`)."""

    @validates_schema
    def _not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError(t("no_fields"))


class MinPropertiesPlugin(BasePlugin):
    """apispec plugin: `minProperties: 1` on the component of every NonEmptySchema."""

    def schema_helper(self, name, definition, **kwargs):
        schema = kwargs.get("schema")
        schema_class = schema if isinstance(schema, type) else type(schema)
        if issubclass(schema_class, NonEmptySchema):
            return {"minProperties": 1}
        return None


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
    currentPage = fields.Integer(
        allow_none=True, metadata={"description": "null when the page was asked with `after`"}
    )
    totalPages = fields.Integer()
    totalItems = fields.Integer()
    itemsPerPage = fields.Integer()
    hasNextPage = fields.Boolean()
    hasPreviousPage = fields.Boolean()


class PageArgsSchema(StrictSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=200))


class CursorPageArgsSchema(PageArgsSchema):
    """`page`/`limit`, or `after` (keyset) for lists that can be long."""

    after = Id(
        strict=False,
        metadata={
            "description": "The id of the last item seen: answers the items that follow it in "
            "the list's order, as fast at any depth (instead of `page`; `currentPage` is then "
            "null)"
        },
    )

    @pre_load
    def _page_or_after(self, data, **kwargs):
        if isinstance(data, Mapping) and "page" in data and "after" in data:
            raise ValidationError({"after": [t("page_with_after")]})
        return data


def list_of(item_schema: type[Schema], name: str) -> type[Schema]:
    """`{items: [...], pagination: {...}}` as the `data` of a list endpoint."""
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item_schema)),
            "pagination": fields.Nested(PaginationSchema),
        },
        name=name,
    )


class UserRefSchema(StrictSchema):
    """Who did something: a user's id and e-mail."""

    id = fields.Integer()
    email = fields.String()
