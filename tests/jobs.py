"""Jobs and their runs in tests: fixtures (registered in tests/conftest.py) and helpers."""

import json
from datetime import timedelta

import pytest

from app.extensions import db
from app.models import BackupJob, Run
from tests.app.api.helpers import body

QUEUE = "zdm.server.web-server-01"


@pytest.fixture
def register(client, auth, seed_inventory, broker):
    """Register a job through the API; returns the BackupJob."""

    def _register(**changes) -> BackupJob:
        data = body(**changes)
        response = client.post("/api/v1/backups", json=data, headers=auth)
        assert response.status_code == 201, response.get_data(as_text=True)
        return db.session.get(BackupJob, response.get_json()["data"]["results"][0]["id"])

    return _register


@pytest.fixture
def broker_down(app):
    """Within the block, the app's broker is an address where nothing listens."""
    import contextlib

    @contextlib.contextmanager
    def _down():
        saved = app.config["REDIS_URL"]
        app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
        try:
            yield
        finally:
            app.config["REDIS_URL"] = saved

    return _down


def every_minute(**changes) -> dict:
    return {"schedule": {"type": "custom", "description": "* * * * *"}, **changes}


def runs_of(job_id: int) -> list[Run]:
    db.session.expire_all()
    return db.session.query(Run).filter_by(job_id=job_id).order_by(Run.id).all()


def queued_messages(broker) -> list[dict]:
    """The task messages waiting in the agent's queue (kombu's Redis list)."""
    messages = [json.loads(raw) for raw in broker.lrange(QUEUE, 0, -1)]
    return [{"task": m["headers"]["task"], **json.loads(_body(m))[1]} for m in messages]


def _body(message) -> str:
    import base64

    raw = message["body"]
    return (
        base64.b64decode(raw).decode()
        if message.get("properties", {}).get("body_encoding") == "base64"
        else raw
    )


def later(job: BackupJob, seconds: float = 0.5):
    return job.next_run_at + timedelta(seconds=seconds)
