"""Compare an answer with what the OpenAPI document says about it.

A small checker of the JSON Schema subset apispec writes (type, nullable, anyOf,
properties, additionalProperties, items, enum, $ref). Both ways: the answer has no
property the document does not name, and every property the document names is in the
answer, unless its description starts with "Optional"."""

from __future__ import annotations

_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
}


def answer_schema(spec: dict, method: str, path: str, status: int) -> dict:
    responses = spec["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} does not document {status}"
    return responses[str(status)]["content"]["application/json"]["schema"]


def assert_documented(spec: dict, method: str, path: str, response) -> None:
    assert_payload_documented(spec, method, path, response.status_code, response.get_json())


def assert_payload_documented(spec: dict, method: str, path: str, status: int, payload) -> None:
    schema = answer_schema(spec, method, path, status)
    problems = list(_mismatches(spec, schema, payload, "$"))
    assert not problems, "\n".join(problems)


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _mismatches(spec: dict, schema: dict, value, where: str):
    schema = _resolve(spec, schema)
    if value is None:
        nullable = schema.get("nullable") or any(
            _resolve(spec, s).get("nullable") for s in schema.get("anyOf", [])
        )
        if not nullable:
            yield f"{where}: null, not documented as nullable"
        return
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if not _resolve(spec, s).get("nullable")]
        if all(list(_mismatches(spec, s, value, where)) for s in options):
            yield f"{where}: matches none of anyOf"
        return
    kind = schema.get("type")
    if kind is None and "properties" in schema:
        kind = "object"
    if kind:
        expected = _TYPES[kind]
        if isinstance(value, bool) and kind in ("integer", "number"):
            yield f"{where}: boolean where {kind} is documented"
            return
        if not isinstance(value, expected):
            yield f"{where}: {type(value).__name__} where {kind} is documented"
            return
    if "enum" in schema and value not in schema["enum"]:
        yield f"{where}: {value!r} not in {schema['enum']}"
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is False or properties:
            for key in value:
                if key not in properties:
                    yield f"{where}.{key}: not in the document"
        for key, sub in properties.items():
            if key in value:
                yield from _mismatches(spec, sub, value[key], f"{where}.{key}")
            elif not str(
                _resolve(spec, sub).get("description", sub.get("description", ""))
            ).startswith("Optional"):
                yield f"{where}.{key}: documented but missing"
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from _mismatches(spec, schema["items"], item, f"{where}[{index}]")
