"""Request bodies of the seed, and small assertions shared by the API tests."""

import copy
import re

from app.extensions import db
from app.models import BackupJob

SEED_BASIC = {
    "center": "CENTER-001",
    "server": "web-server-01",
    "type": "full",
    "partition": ["/dev/sda1"],
    "repository": {"id": 1, "type": "local", "path": "/backup/storage"},
    "jobName": "daily-backup-web",
    "user": "admin@example.com",
    "schedule": {"type": "daily", "description": "0 2 * * *"},
}

SEED_ADVANCED = {
    "center": "CENTER-001",
    "server": "web-server-01",
    "type": "incremental",
    "partition": ["/dev/sda1", "/dev/sda2"],
    "repository": {"id": 1, "type": "local", "path": "/backup/storage"},
    "jobName": "incremental-backup",
    "user": "admin@example.com",
    "schedule": {"type": "hourly", "description": "0 * * * *"},
    "rotation": 7,
    "compression": "gzip",
    "networkLimit": 1000,
    "autoStart": "yes",
}

# The seed's answer to SEED_BASIC, less requestID and timestamp.
SEED_BASIC_ANSWER_DATA = {
    "results": [
        {
            "state": "success",
            "jobName": "daily-backup-web",
            "partition": "/dev/sda1",
            "jobMode": "full",
            "autoStart": "yes",
            "schedule": {"basic": "0 2 * * *", "advanced": "daily at 2:00 AM"},
            "errorMessage": None,
        }
    ],
    "summary": {"total": 1, "successful": 1, "failed": 0},
}
SEED_SUCCESS_MESSAGE = "백업 작업이 성공적으로 등록되었습니다"

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def body(base=None, **changes) -> dict:
    """A deep copy of the seed's basic request with top-level changes applied;
    a value of `...` removes the field."""
    data = copy.deepcopy(base or SEED_BASIC)
    for key, value in changes.items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def job_count() -> int:
    return db.session.query(BackupJob).count()


def assert_error(response, status: int, *, paths: tuple[str, ...] = ()) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    payload = response.get_json()
    assert payload["success"] is False
    assert payload["requestID"].startswith("req-") or payload["requestID"]
    assert isinstance(payload["error"], str) and payload["error"]
    assert TIMESTAMP.match(payload["timestamp"])
    for path in paths:
        assert path in payload["detail"]["validationErrors"], payload["detail"]
    return payload
