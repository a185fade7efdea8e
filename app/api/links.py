"""OpenAPI links: where the id in an answer leads.

`@blp.doc(**links(201, {"ref": "/data/id"}, ("GET", "/api/v1/servers/{ref}")))` says that the
`id` at `/data/id` of the 201 answer is the `ref` of that operation. Clients and Swagger UI show
them; schemathesis follows them in its stateful tests (tests/api/test_fuzz.py).
"""


def links(status: int, parameters: dict[str, str], *targets: tuple[str, str]) -> dict:
    """The `doc` of a view whose `status` answer leads to each target (method, path):
    `parameters` maps a path parameter of the targets to a JSON pointer into the answer,
    or to a runtime expression of its own (`$request.path.ref`)."""
    expressions = {
        name: value if value.startswith("$") else f"$response.body#{value}"
        for name, value in parameters.items()
    }
    documented = {}
    for method, path in targets:
        escaped = path.replace("~", "~0").replace("/", "~1")
        documented[_name(method, path)] = {
            "operationRef": f"#/paths/{escaped}/{method.lower()}",
            "parameters": expressions,
        }
    # flask-smorest keys the responses of an operation by the int status until it is dumped
    return {"responses": {status: {"links": documented}}}


def _name(method: str, path: str) -> str:
    """`GET /api/v1/backups/{ref}/runs` -> `GetBackupsRefRuns` (a link name is [A-Za-z0-9._-])."""
    words = [method.lower()] + [
        part.strip("{}")
        for part in path.split("/")[3:]
        if part  # after /api/v1
    ]
    return "".join(w.replace("-", " ").title().replace(" ", "") for w in words)
