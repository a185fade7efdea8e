"""Schemathesis against /api/v1/openapi.json: every operation, then the stateful links.

The app is the real one (`app` fixture: the test database, Redis) with an admin token and
the seed's inventory. Each operation gets valid and invalid requests (schemathesis's
examples, coverage and fuzzing phases); then the state machine follows the document's
links (POST /backups -> GET/PUT/DELETE /backups/{ref}, /run -> /runs/{run_id}, ...).

Every answer must: not be a 5xx; carry a status code the operation lists (the generic
envelope errors 400, 405, 413 and 415 are the `default` response of every operation); be
JSON where the document says JSON; match the schema of its status code.

The number of examples is bounded (25 per operation, 10 stateful scenarios of up to 6 steps)
so that the module takes about a minute; ZDM_FUZZ_EXAMPLES and ZDM_FUZZ_SCENARIOS search
longer (100 and 40 pass on SQLite and PostgreSQL).
"""

import os

import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import config
from app import create_app
from tests.conftest import add_seed_inventory, bearer, empty_tables, make_user

FUZZ_EXAMPLES = int(os.environ.get("ZDM_FUZZ_EXAMPLES", "25"))
STATEFUL_SCENARIOS = int(os.environ.get("ZDM_FUZZ_SCENARIOS", "10"))

# What any operation may answer through `default` (the ErrorEnvelope): a body that is not
# JSON (400), a method the path does not have (405), a body over the limit (413) or of
# another media type (415). Anything else must be listed by the operation itself.
GENERIC_STATUSES = {400, 405, 413, 415}


def status_code_listed(ctx, response, case):
    """The status is one the operation lists, not merely covered by `default`."""
    if case.method.upper() != case.operation.method.upper():
        return None  # a method the path does not have: schemathesis checks the 405 itself
    listed = case.operation.definition.raw.get("responses", {})
    if response.status_code not in GENERIC_STATUSES and str(response.status_code) not in listed:
        raise AssertionError(
            f"{case.operation.label} answered {response.status_code}, which it does not list"
        )
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    status_code_listed,
    content_type_conformance,
    response_schema_conformance,
]


class _DocumentOnly(config.Config):
    """The document does not depend on the database: collect the operations from an app
    on an in-memory one; the requests go to the test's `app`."""

    SQLALCHEMY_DATABASE_URI = "sqlite://"


# The stateful scenarios send valid requests with the admin's token only, so that they go
# deep (a job registered, then run, stopped, changed, deleted) rather than wide.
# Logging in and creating users hash a password with Argon2, slow on purpose: fewer
# examples there.
SETTINGS = schemathesis.Config.from_dict(
    {
        "generation": {"max-examples": FUZZ_EXAMPLES},
        "operations": [
            {
                "include-name": ["POST /api/v1/token/issue", "POST /api/v1/users"],
                "generation": {"max-examples": max(FUZZ_EXAMPLES // 3, 1)},
            }
        ],
        "phases": {
            "stateful": {
                "generation": {"mode": "positive", "with-security-parameters": False},
                "max-steps": 6,
            }
        },
    }
)
schema = schemathesis.openapi.from_wsgi(
    "/api/v1/openapi.json", create_app(_DocumentOnly), config=SETTINGS
)


@schema.hook
def flatmap_body(context, body):
    """Half the valid registrations name the seed's inventory and a cron the document
    cannot express, so that some succeed and the links from POST /backups are followed;
    the other half keep their made-up names."""
    operation = context.operation
    if operation is None or operation.label != "POST /api/v1/backups" or not isinstance(body, dict):
        return st.just(body)
    seeded = {
        **body,
        "center": "CENTER-001",
        "server": "web-server-01",
        "partition": ["/dev/sda1"],
        "repository": {"id": 1, "type": "local", "path": "/backup/storage"},
        "user": "admin@example.com",
        "schedule": {"type": "custom", "description": "*/5 * * * *"},
    }
    return st.sampled_from([body, seeded])


@schema.parametrize()
@settings(
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_operation_answers_as_documented(case, app, auth, seed_inventory):
    if case.formatted_path == "/api/v1/backups/histories":
        # the history list, another operation: the document excludes the ref `histories`,
        # which a negative example of /backups/{ref} sends anyway
        return
    case.call_and_validate(headers=auth, app=app, checks=CHECKS)


def test_linked_operations_answer_as_documented(app):
    class Links(schema.as_state_machine()):
        """Each scenario starts from the same database: the seed, an admin and a new token
        (a scenario may have revoked the last one), so a failing one replays alike."""

        def setup(self):
            empty_tables(app)
            self.headers = bearer(make_user())
            add_seed_inventory()

        def get_call_kwargs(self, case):
            return {"headers": self.headers, "app": app}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS)

    Links.run(
        settings=settings(
            max_examples=STATEFUL_SCENARIOS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate],
            database=None,
        )
    )
