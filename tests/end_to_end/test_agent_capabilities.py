"""Agents report their capabilities in their heartbeat (engine version, master-key fingerprint),
and what an agent cannot serve is refused up front: an encrypted job for a server whose agent
has no master key (per partition), a restore of an encrypted point to an agent holding another
key than the point was made with. Real agent processes, Redis and database."""

import os

import pytest

import config
from app import create_app
from app.extensions import db
from app.models import RecoveryPoint, Restore, Run, Server
from tests.conftest import bearer, make_user
from tests.end_to_end.processes import Process, celery, flask_cli, service_env, wait_until
from workers import engine

pytestmark = pytest.mark.slow

SERVER = "keyed-agent-01"


class Agent:
    """One agent process for SERVER, started with the environment given."""

    def __init__(self, env, logs, name):
        self.process = Process(
            name,
            celery("worker", "-Q", f"zdm.server.{SERVER}", "-n", f"{name}@%h", "-c", "1",
                   "--without-mingle", "--without-gossip", "-l", "INFO"),
            env, logs,
        )  # fmt: skip


def reported(fingerprint):
    """The server's row once its agent reported `fingerprint` (None: no key)."""

    def check():
        db.session.remove()
        server = db.session.query(Server).filter_by(name=SERVER).one_or_none()
        if server is None or server.engine_version is None:
            return None
        return server if server.master_key_fingerprint == fingerprint else None

    return check


def test_capabilities_reported_and_what_an_agent_cannot_serve_is_refused(
    fresh_database_url, redis_url, tmp_path
):
    image, repository, restores = tmp_path / "sda1.img", tmp_path / "repository", tmp_path / "r"
    image.write_bytes(os.urandom(512 * 1024) + bytes(512 * 1024))
    base_env = service_env(
        fresh_database_url, tmp_path, redis_url,
        ZDM_AGENT_CENTER="CENTER-001", ZDM_AGENT_SERVER=SERVER,
        ZDM_AGENT_PARTITIONS=f"/dev/sda1={image}", ZDM_AGENT_HEARTBEAT_SECONDS="1",
        ZDM_RESTORE_ROOTS=str(restores),
    )  # fmt: skip
    base_env.pop("ZDM_MASTER_KEY", None)
    assert flask_cli(base_env, "zdm", "init").returncode == 0
    first_key, second_key = engine.generate_master_key(), engine.generate_master_key()
    first_fp = engine.configured_key_fingerprint(first_key)
    second_fp = engine.configured_key_fingerprint(second_key)
    logs = tmp_path / "logs"
    logs.mkdir()

    class Settings(config.Config):
        SQLALCHEMY_DATABASE_URI = fresh_database_url
        REDIS_URL = redis_url
        ZDM_RESTORE_ROOTS = [str(restores)]

    app = create_app(Settings)
    agents = []
    try:
        with app.app_context():
            client = app.test_client()
            agents.append(Agent(base_env, logs, "nokey"))  # an agent without a master key
            server = wait_until(reported(None), 60, what="the keyless agent's report")
            assert server.engine_version == engine.ENGINE_VERSION
            auth = bearer(make_user())
            assert client.post("/api/v1/repositories", headers=auth, json={
                "center": "CENTER-001", "type": "local", "path": str(repository)}).status_code == 201  # fmt: skip

            def register(name, encryption):
                return client.post("/api/v1/backups", headers={**auth, "Accept-Language": "en"},
                                   json={
                    "center": "CENTER-001", "server": SERVER, "type": "full",
                    "partition": ["/dev/sda1"], "jobName": name, "user": "admin@example.com",
                    "repository": {"id": 1, "type": "local", "path": str(repository)},
                    "schedule": {"type": "daily", "description": "0 3 * * *"},
                    "autoStart": "no", "encryption": encryption,
                })  # fmt: skip

            refused = register("secret", "aes256")
            assert refused.status_code == 409, refused.get_data(as_text=True)
            [result] = refused.get_json()["data"]["results"]
            assert (result["state"], result["partition"], result["errorMessage"]) == (
                "fail",
                "/dev/sda1",
                f"The agent of server '{SERVER}' has no master key (ZDM_MASTER_KEY): it cannot "
                "make encrypted (aes256) backups.",
            )
            assert register("plain", "none").status_code == 201  # the rest is unchanged

            # the agent restarted with a key: its next report carries the key's fingerprint
            agents.pop().process.stop()
            agents.append(Agent({**base_env, "ZDM_MASTER_KEY": first_key}, logs, "first"))
            wait_until(reported(first_fp), 60, what="the first key's fingerprint")
            shown = client.get(f"/api/v1/servers/{SERVER}", headers=auth).get_json()["data"]
            assert shown["agent"] == {"engineVersion": engine.ENGINE_VERSION,
                                      "masterKeyFingerprint": first_fp}  # fmt: skip
            answer = register("secret", "aes256")
            assert answer.status_code == 201, answer.get_data(as_text=True)
            job_id = answer.get_json()["data"]["results"][0]["id"]
            run_id = client.post(f"/api/v1/backups/{job_id}/run", headers=auth).get_json()["data"][
                "runId"
            ]

            def finished():
                db.session.remove()
                run = db.session.get(Run, run_id)
                return run if run.state not in ("queued", "running") else None

            assert wait_until(finished, 60, what="the encrypted backup").state == "success"
            point = db.session.query(RecoveryPoint).filter_by(job_id=job_id).one()
            assert point.encrypted and point.key_fingerprint == first_fp
            assert first_key not in (logs / "first.log").read_text()  # the key is never told

            # another key now: the restore is refused before anything is sent
            agents.pop().process.stop()
            agents.append(Agent({**base_env, "ZDM_MASTER_KEY": second_key}, logs, "second"))
            wait_until(reported(second_fp), 60, what="the second key's fingerprint")
            target = str(restores / "secret.img")
            request = {"recoveryPoint": point.id, "server": SERVER, "target": target}
            refused = client.post("/api/v1/restores", headers={**auth, "Accept-Language": "en"},
                                  json=request)  # fmt: skip
            assert refused.status_code == 409
            assert refused.get_json()["error"] == (
                f"Recovery point {point.id} was encrypted with master key {first_fp}, but the "
                f"agent of server '{SERVER}' holds another key ({second_fp}); it cannot restore it."
            )
            db.session.remove()
            assert db.session.query(Restore).count() == 0

            # the agent with the point's key restores it
            agents.pop().process.stop()
            agents.append(Agent({**base_env, "ZDM_MASTER_KEY": first_key}, logs, "again"))
            wait_until(reported(first_fp), 60, what="the first key again")
            accepted = client.post("/api/v1/restores", headers=auth, json=request)
            assert accepted.status_code == 202, accepted.get_data(as_text=True)
            restore_id = accepted.get_json()["data"]["id"]

            def restored():
                db.session.remove()
                restore = db.session.get(Restore, restore_id)
                return restore if restore.state not in ("queued", "running") else None

            assert wait_until(restored, 60, what="the restore").state == "success"
            assert (restores / "secret.img").read_bytes() == image.read_bytes()
    except BaseException:
        for agent in agents:
            print(agent.process.tail())
        raise
    finally:
        for agent in agents:
            agent.process.stop()
