"""Who may do what: the roles x endpoints table, read from the app's routes and the least
role each view's `secured(...)` demands, so it is complete by construction.

`docs/security-roles.md` is this table (tests/api/test_security_roles.py keeps it current):

    .venv/bin/python -m app.access > docs/security-roles.md
"""

import re

from flask import Flask

from app.auth import ROLE_RANK

ROLES = sorted(ROLE_RANK, key=ROLE_RANK.get)  # viewer, operator, admin
_CONVERTER = re.compile(r"<(?:[^:>]+:)?(\w+)>")


def access_rules(app: Flask) -> list[tuple[str, str, str | None]]:
    """(method, path, least role) of every route under /api/v1; None: no token needed."""
    rules = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        view = app.view_functions[rule.endpoint]
        view_class = getattr(view, "view_class", None)
        path = _CONVERTER.sub(r"{\1}", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            handler = getattr(view_class, method.lower()) if view_class else view
            rules.append((method, path, getattr(handler, "required_role", None)))
    return sorted(rules, key=lambda r: (r[1], r[0]))


def roles_table(app: Flask) -> str:
    lines = [
        "# Who may do what",
        "",
        "Generated from the routes and their `secured(...)` roles by `python -m app.access`;",
        "a test fails when it is out of date. `anyone`: no token needed. A disabled user's",
        "tokens are refused everywhere (401). Rules within an endpoint (a restore in place",
        "needs admin) are in docs/security.md.",
        "",
        "| method | path | anyone | " + " | ".join(ROLES) + " |",
        "|---|---|---|" + "---|" * len(ROLES),
    ]
    for method, path, role in access_rules(app):
        if role is None:
            allowed = ["✓"] * (1 + len(ROLES))
        else:
            allowed = [""] + ["✓" if ROLE_RANK[r] >= ROLE_RANK[role] else "" for r in ROLES]
        lines.append(f"| {method} | `{path}` | " + " | ".join(allowed) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import config
    from app import create_app

    class _NoFiles(config.Config):
        SQLALCHEMY_DATABASE_URI = "sqlite://"  # the routes are all it needs

    print(roles_table(create_app(_NoFiles)), end="")
