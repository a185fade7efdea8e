"""docs/security-roles.md is the roles x endpoints table of the app as it is."""

import config
from app.access import access_rules, roles_table


def test_the_roles_document_is_current(app):
    document = (config.BASE_DIR / "docs" / "security-roles.md").read_text()

    assert document == roles_table(app), "regenerate: python -m app.access > docs/security-roles.md"


def test_the_table_holds_the_roles_the_api_enforces(app):
    rules = {(method, path): role for method, path, role in access_rules(app)}

    assert rules[("POST", "/api/v1/token/issue")] is None
    assert rules[("GET", "/api/v1/health")] is None
    assert rules[("GET", "/api/v1/backups")] == "viewer"
    assert rules[("POST", "/api/v1/backups")] == "operator"
    assert rules[("POST", "/api/v1/users/{ref}/disable")] == "admin"
    assert rules[("DELETE", "/api/v1/servers/{ref}")] == "admin"
    assert all(path.startswith("/api/v1/") for _, path in rules)
