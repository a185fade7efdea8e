"""start / stop / run, runs, histories, monitoring and restores through the API."""

import pytest

from app.extensions import db
from app.models import BackupJob, RecoveryPoint, Run
from tests.app.api.helpers import assert_error
from tests.jobs import every_minute, later, queued_messages, runs_of
from workers.beat.scheduler import fire_due_jobs


def test_run_now_queues_a_manual_run_for_the_agent(client, auth, register, broker):
    job = register(**every_minute())

    response = client.post(f"/api/v1/backups/{job.id}/run", headers=auth)

    assert response.status_code == 202
    data = response.get_json()["data"]
    assert data["run"]["trigger"] == "manual" and data["run"]["state"] == "queued"
    assert [m["run_id"] for m in queued_messages(broker)] == [data["runId"]]


def test_run_now_while_a_run_is_unfinished_is_409(client, auth, register, broker):
    job = register(**every_minute())
    client.post(f"/api/v1/backups/{job.id}/run", headers=auth)

    assert_error(client.post(f"/api/v1/backups/{job.id}/run", headers=auth), 409)
    assert len(runs_of(job.id)) == 1


def test_run_now_with_broker_down_is_503_and_the_run_fails(client, auth, register, broker_down):
    job = register(**every_minute())
    with broker_down():
        response = client.post(f"/api/v1/backups/{job.id}/run", headers=auth)

    assert_error(response, 503)
    assert [r.state for r in runs_of(job.id)] == ["failed"]


def test_stop_cancels_a_queued_run_and_running_one_is_asked_to_stop(client, auth, register, broker):
    job = register(**every_minute())
    queued = fire_due_jobs(later(job))[0]

    response = client.post(f"/api/v1/backups/{job.id}/stop", headers=auth)

    data = response.get_json()["data"]
    assert data["canceledRuns"] == [queued.id]
    assert data["backup"]["job"]["info"]["status"]["current"] == "waiting"
    assert data["backup"]["job"]["info"]["schedule"]["nextRunAt"] is None
    assert [r.state for r in runs_of(job.id)] == ["canceled"]


def test_stop_marks_a_running_run_canceling(client, auth, register, broker):
    job = register(**every_minute())
    run = fire_due_jobs(later(job))[0]
    run.state = "running"
    db.session.commit()

    client.post(f"/api/v1/backups/{job.id}/stop", headers=auth)

    assert runs_of(job.id)[0].state == "canceling"


def test_start_of_a_past_once_job_is_409(client, auth, register, broker):
    from datetime import timedelta

    from app.timeutil import utcnow

    at = utcnow() + timedelta(hours=1)
    job = register(autoStart="no", schedule={"type": "once", "description": at.isoformat()})
    job.schedule_expr = "2020-01-01T00:00:00"
    db.session.commit()

    assert_error(client.post(f"/api/v1/backups/{job.id}/start", headers=auth), 409)


def test_runs_history_and_run_by_id(client, auth, register, broker):
    job = register(**every_minute())
    fired = fire_due_jobs(later(job))[0]

    runs = client.get(f"/api/v1/backups/{job.id}/runs", headers=auth).get_json()["data"]
    history = client.get(
        "/api/v1/backups/histories?state=queued&server=web-server-01", headers=auth
    )
    one = client.get(f"/api/v1/runs/{fired.id}", headers=auth).get_json()["data"]

    assert [r["id"] for r in runs["items"]] == [fired.id]
    assert [r["id"] for r in history.get_json()["data"]["items"]] == [fired.id]
    assert one["trigger"] == "schedule" and one["requestedBy"] is None
    assert one["job"] == {"id": job.id, "name": job.name, "deleted": False}
    assert set(one) >= {
        "scheduledFor",
        "state",
        "startedAt",
        "finishedAt",
        "bytesRead",
        "bytesWritten",
        "percent",
        "speed",
        "errorMessage",
        "log",
    }
    assert (
        client.get("/api/v1/backups/histories?state=failed", headers=auth).get_json()["data"][
            "items"
        ]
        == []
    )
    assert_error(client.get("/api/v1/runs/999", headers=auth), 404)


def test_monitoring_shows_the_current_run_progress(client, auth, register, broker):
    job = register(**every_minute())
    run = fire_due_jobs(later(job))[0]
    run.state, run.percent, run.bytes_read, run.speed = "running", 42.0, 4200, 1000.0
    db.session.commit()

    data = client.get(f"/api/v1/backups/monitoring/job/{job.id}", headers=auth).get_json()["data"]

    assert data["run"]["percent"] == 42.0 and data["run"]["bytesRead"] == 4200
    assert data["run"]["state"] == "running"


def test_monitoring_without_a_run(client, auth, register, broker):
    job = register(**every_minute())

    data = client.get(f"/api/v1/backups/monitoring/job/{job.id}", headers=auth).get_json()["data"]

    assert data["run"] is None and data["status"] == "scheduled"


@pytest.fixture
def point(register, broker):
    job = register(**every_minute())
    run = fire_due_jobs(later(job))[0]
    point = RecoveryPoint(engine_id="0123abcd", job_id=job.id, run_id=run.id, repository_id=1, server_id=1,
                          partition_name="/dev/sda1", partition_kind="block", engine_job=job.engine_job,
                          mode="full", source_size=100, stored_size=10, compression="lz4")  # fmt: skip
    db.session.add(point)
    db.session.commit()
    broker.delete("zdm.server.web-server-01")
    return point


def test_recovery_points_of_a_job(client, auth, point):
    data = client.get(f"/api/v1/backups/{point.job_id}/recovery-points", headers=auth).get_json()[
        "data"
    ]

    assert data["items"] == [
        {"id": point.id, "runId": point.run_id, "mode": "full", "createdAt": data["items"][0]["createdAt"],
         "sourceSize": 100, "storedSize": 10, "compression": "lz4", "encrypted": False,
             "state": "available", "damaged": False}
    ]  # fmt: skip


def test_restore_is_queued_for_the_servers_agent(client, auth, point, broker):
    response = client.post(
        "/api/v1/restores",
        json={
            "recoveryPoint": point.id,
            "server": "web-server-01",
            "target": "/var/lib/zdm/restores/sda1.img",
        },
        headers=auth,
    )

    assert response.status_code == 202
    restore = response.get_json()["data"]
    assert restore["state"] == "queued" and restore["target"] == "/var/lib/zdm/restores/sda1.img"
    assert queued_messages(broker) == [
        {
            "task": "zdm.restore.run",
            "restore_id": restore["id"],
            "recovery_point_id": point.id,
            "job_id": point.job_id,
            "job_name": db.session.get(BackupJob, point.job_id).name,
        }
    ]
    assert (
        client.get(f"/api/v1/restores/{restore['id']}", headers=auth).get_json()["data"]["id"]
        == restore["id"]
    )


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({"recoveryPoint": 999, "server": "web-server-01", "target": "/x"}, 404),
        ({"recoveryPoint": "POINT", "server": "web-server-01", "target": "/x"}, 422),
        ({"server": "web-server-01", "target": "/x"}, 422),
        ({"recoveryPoint": 1, "server": "web-server-01", "target": "relative/x"}, 422),
        ({"recoveryPoint": 1, "server": "nobody", "target": "/x"}, 404),
    ],
)
def test_bad_restore_requests(client, auth, point, data, status):
    assert_error(client.post("/api/v1/restores", json=data, headers=auth), status)
    assert db.session.query(Run).count() == 1


def test_delete_with_purge_asks_the_agent_to_delete_points(client, auth, point, broker):
    response = client.delete(f"/api/v1/backups/{point.job_id}?purge=true", headers=auth)

    assert response.status_code == 200
    assert queued_messages(broker) == [
        {"task": "zdm.repository.purge", "repository": "/backup/storage", "engine_job": point.engine_job,
         "job_name": "daily-backup-web"}
    ]  # fmt: skip
    assert db.session.query(RecoveryPoint).count() == 0


def test_delete_without_purge_keeps_points(client, auth, point, broker):
    job_id = point.job_id
    client.delete(f"/api/v1/backups/{job_id}", headers=auth)

    kept = db.session.query(RecoveryPoint).one()
    assert kept.job_id == job_id and queued_messages(broker) == []
