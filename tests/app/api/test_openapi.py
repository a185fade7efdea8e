"""The OpenAPI document is served and true to the routes and envelopes."""

import re

import pytest
from marshmallow import ValidationError

from app.schemas.common import (
    ABSOLUTE_PATH_PATTERN,
    NAME_PATTERN,
    normalise_absolute_path,
    validate_name,
)


def test_every_api_route_is_documented(app, client):
    spec = client.get("/api/v1/openapi.json").get_json()

    documented = {
        (path, method.upper())
        for path, item in spec["paths"].items()
        for method in item
        if method != "parameters"
    }
    for rule in app.url_map.iter_rules():
        if (
            not rule.rule.startswith("/api/v1/")
            or "openapi.json" in rule.rule
            or "/docs" in rule.rule
        ):
            continue
        path = "/api/v1" + re.sub(r"<(?:[^:>]+:)?(\w+)>", r"{\1}", rule.rule)[len("/api/v1") :]
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, f"{method} {path} is not in openapi.json"


def test_registration_documents_its_statuses_and_envelope(client):
    spec = client.get("/api/v1/openapi.json").get_json()

    post = spec["paths"]["/api/v1/backups"]["post"]
    assert {"201", "207", "409", "404", "422", "401", "403"} <= set(post["responses"])
    assert post["security"] == [{"bearerAuth": []}]
    schemas = spec["components"]["schemas"]
    request = schemas["BackupCreate"]
    assert set(request["required"]) == {
        "center",
        "server",
        "type",
        "partition",
        "repository",
        "jobName",
        "user",
        "schedule",
    }
    assert request["properties"]["compression"]["enum"] == ["gzip", "lz4"]
    assert request["properties"]["rotation"]["default"] == 7
    error = schemas["ErrorEnvelope"]["properties"]
    assert {"success", "requestID", "error", "detail", "timestamp"} <= set(error)


def test_error_responses_use_the_error_envelope(client):
    spec = client.get("/api/v1/openapi.json").get_json()

    default_error = spec["components"]["responses"]["DEFAULT_ERROR"]
    assert default_error["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorEnvelope")


def test_interactive_docs_page_and_its_assets_are_served_locally(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and b"swagger-ui" in page.data
    assert b"/api/v1/openapi.json" in page.data

    asset = client.get("/api/v1/docs/static/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.data) > 100_000
    asset.close()


def test_health_needs_no_token(client):
    assert client.get("/api/v1/health").status_code in (200, 503)


def _schemas(client) -> dict:
    return client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]


def test_absolute_paths_have_their_pattern(client):
    schemas = _schemas(client)

    for pattern in (
        schemas["RepositoryCreate"]["properties"]["path"]["pattern"],
        schemas["RepositoryRef"]["properties"]["path"]["pattern"],
        schemas["BackupCreate"]["properties"]["excludeDir"]["items"]["pattern"],
        schemas["BackupUpdate"]["properties"]["excludeDir"]["items"]["pattern"],
        schemas["Partition"]["properties"]["mountpoint"]["pattern"],
    ):
        assert pattern == ABSOLUTE_PATH_PATTERN


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/backup",
        "/backup//storage/./",
        "/a..b/..c/d..",
        "relative",
        "",
        "/a/../b",
        "/..",
        "/a/..",
        "//..",
        "/x\ty",
        "/x\x7f",
        "/데이터/백업",
    ],
)
def test_the_documented_path_pattern_is_the_rule_the_server_applies(path):
    try:
        normalise_absolute_path(path)
        accepted = True
    except ValidationError:
        accepted = False

    assert (re.fullmatch(ABSOLUTE_PATH_PATTERN, path) is not None) == accepted


@pytest.mark.parametrize(
    "name", ["web-01", "a", "daily backup", " lead", "trail ", "tab\tin", "백업 작업", "x\u3000"]
)
def test_the_documented_name_pattern_is_the_rule_the_server_applies(name):
    try:
        validate_name(name)
        accepted = True
    except ValidationError:
        accepted = False

    assert (re.fullmatch(NAME_PATTERN, name) is not None) == accepted


def test_names_have_their_pattern(client):
    schemas = _schemas(client)

    assert schemas["BackupCreate"]["properties"]["jobName"]["pattern"] == NAME_PATTERN
    assert schemas["CenterCreate"]["properties"]["name"]["pattern"] == NAME_PATTERN
    assert schemas["ServerCreate"]["properties"]["name"]["pattern"] == NAME_PATTERN


def test_put_body_needs_at_least_one_property(client):
    assert _schemas(client)["BackupUpdate"]["minProperties"] == 1


def test_integers_state_the_range_their_column_holds(client):
    schemas = _schemas(client)

    size = schemas["Partition"]["properties"]["size"]
    assert (size["minimum"], size["maximum"]) == (0, 2**63 - 1)
    repository_id = schemas["RepositoryRef"]["properties"]["id"]
    assert (repository_id["minimum"], repository_id["maximum"]) == (1, 2**31 - 1)
    rotation = schemas["BackupCreate"]["properties"]["rotation"]
    assert (rotation["minimum"], rotation["maximum"]) == (1, 365)
    network = schemas["BackupCreate"]["properties"]["networkLimit"]
    assert (network["minimum"], network["maximum"]) == (0, 1_000_000)


def test_every_input_integer_has_a_range(client):
    schemas = _schemas(client)
    inputs = ["BackupCreate", "BackupUpdate", "RepositoryRef", "Partition", "ServerCreate"]

    for name in inputs:
        for field, prop in schemas[name]["properties"].items():
            if prop.get("type") == "integer":
                assert "minimum" in prop and "maximum" in prop, f"{name}.{field}"


def test_required_properties_are_listed(client):
    schemas = _schemas(client)

    assert set(schemas["TokenIssue"]["required"]) == {"email", "password"}
    assert set(schemas["UserCreate"]["required"]) == {"email", "password", "role"}
    assert set(schemas["Partition"]["required"]) == {"name", "kind"}
    assert set(schemas["ServerCreate"]["required"]) == {"name", "center"}
    assert set(schemas["RepositoryCreate"]["required"]) == {"center", "type", "path"}
    assert set(schemas["RepositoryRef"]["required"]) == {"id", "type", "path"}
    assert set(schemas["Schedule"]["required"]) == {"type", "description"}


def test_login_documents_throttling(client):
    spec = client.get("/api/v1/openapi.json").get_json()

    answers = spec["paths"]["/api/v1/token/issue"]["post"]["responses"]
    assert {"201", "401", "422", "429", "503"} <= set(answers)
    assert "Retry-After" in answers["429"]["headers"]
