"""The busiest views send their answers without dumping them through their response
schema (app.http.ok_response). Their answers must still be exactly what the OpenAPI
document says: dumped through the documented schema, each answer comes back unchanged
(no undocumented field, no value of another type)."""

import pytest

from app.extensions import db
from app.models import Run
from app.schemas.common import envelope
from app.timeutil import utcnow
from tests.app.api.helpers import SEED_ADVANCED, SEED_BASIC, body

pytestmark = pytest.mark.usefixtures("seed_inventory")


def assert_documented(envelope_name: str, answer: dict) -> None:
    schema = envelope(None, envelope_name)()
    assert schema.dump(answer) == answer


def test_registration_answers_are_their_documented_schema(client, auth):
    created = client.post("/api/v1/backups", json=SEED_ADVANCED, headers=auth)
    partial = client.post(
        "/api/v1/backups",
        json=body(SEED_ADVANCED, partition=["/dev/sda1", "/dev/sdz9"], jobName="other"),
        headers=auth,
    )

    assert (created.status_code, partial.status_code) == (201, 207)
    assert_documented("RegistrationEnvelope", created.get_json())
    assert_documented("RegistrationEnvelope", partial.get_json())


def test_job_list_answers_are_their_documented_schema(client, auth, admin):
    client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)
    client.post(
        "/api/v1/backups",
        json=body(partition=["/data"], excludeDir=["/data/cache"], mailEvent="ops@example.com"),
        headers=auth,
    )
    started = utcnow()
    db.session.add(
        Run(job_id=1, trigger="manual", scheduled_for=started, state="running", started_at=started)
    )
    db.session.commit()

    for query in ("", "?limit=1&page=2", "?after=1", "?server=web-server-01"):
        answer = client.get(f"/api/v1/backups{query}", headers=auth).get_json()
        assert answer["data"]["items"], query
        assert_documented("BackupJobListEnvelope", answer)
    first = client.get("/api/v1/backups", headers=auth).get_json()["data"]["items"][0]
    assert first["job"]["info"]["status"]["time"]["start"] is not None
