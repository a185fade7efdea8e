"""The answers of the job endpoints are what the OpenAPI document says, field for field."""

from app.extensions import db
from app.models import RecoveryPoint
from tests.app.api.openapi_check import assert_documented
from tests.jobs import every_minute, later
from workers.beat.scheduler import fire_due_jobs


def test_job_endpoints_answer_as_documented(client, auth, register, broker):
    spec = client.get("/api/v1/openapi.json").get_json()
    job = register(**every_minute(), mailEvent="ops@example.com")
    run = fire_due_jobs(later(job))[0]
    db.session.add(RecoveryPoint(engine_id="0123abcd", job_id=job.id, run_id=run.id,
                                 repository_id=1, server_id=1, partition_name="/dev/sda1",
                                 partition_kind="block", engine_job=job.engine_job, mode="full",
                                 source_size=100, stored_size=10, compression="lz4"))  # fmt: skip
    db.session.commit()

    answers = [
        ("get", "/api/v1", "/api/v1"),
        ("get", "/api/v1/health", "/api/v1/health"),
        ("get", "/api/v1/backups", "/api/v1/backups"),
        ("get", "/api/v1/backups/{ref}", f"/api/v1/backups/{job.id}"),
        ("get", "/api/v1/backups/{ref}/runs", f"/api/v1/backups/{job.id}/runs"),
        ("get", "/api/v1/backups/histories", "/api/v1/backups/histories"),
        ("get", "/api/v1/runs/{run_id}", f"/api/v1/runs/{run.id}"),
        ("get", "/api/v1/backups/{ref}/recovery-points", f"/api/v1/backups/{job.id}/recovery-points"),
        ("get", "/api/v1/backups/monitoring/job/{ref}", f"/api/v1/backups/monitoring/job/{job.id}"),
        ("get", "/api/v1/runs/{run_id}", "/api/v1/runs/999"),
        ("post", "/api/v1/backups/{ref}/run", f"/api/v1/backups/{job.id}/run"),
        ("post", "/api/v1/backups/{ref}/stop", f"/api/v1/backups/{job.id}/stop"),
        ("post", "/api/v1/backups/{ref}/start", f"/api/v1/backups/{job.id}/start"),
    ]  # fmt: skip
    for method, documented, url in answers:
        response = getattr(client, method)(url, headers=auth)
        assert_documented(spec, method, documented, response)

    changed = client.put(f"/api/v1/backups/{job.id}", json={"rotation": 3}, headers=auth)
    assert_documented(spec, "put", "/api/v1/backups/{ref}", changed)
    deleted = client.delete(f"/api/v1/backups/{job.id}", headers=auth)
    assert_documented(spec, "delete", "/api/v1/backups/{ref}", deleted)
