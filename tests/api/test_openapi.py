"""The OpenAPI document is served and true to the routes and envelopes."""

import re


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
