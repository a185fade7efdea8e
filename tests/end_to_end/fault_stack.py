"""A whole service in real processes for fault tests: its own private redis-server (so a test
may stop it or cut it), its own database, the control worker, beat and agents — each agent
optionally behind `LinkProxy`s, as an agent on another host reaches Redis and the database.

Timings are shortened through the environment (lease 6 s, sweep every 2 s, heartbeat 2 s).
Every process it started can be killed (`kill -9` of its group) and started again by name, as
`tests/end_to_end/chaos.py` does at random.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import redis
from sqlalchemy import select

import config
from app import create_app
from app.extensions import db
from app.models import RecoveryPoint, Run, Server
from tests.conftest import _worker_database, bearer, make_user, start_private_redis
from tests.end_to_end.link import LinkProxy
from tests.end_to_end.processes import Process, celery, flask_cli, service_env, wait_until

MiB = 1024 * 1024
CENTER = "CENTER-001"


def make_random_image(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        for _ in range(size // MiB):
            f.write(os.urandom(MiB))


class FaultStack:
    """Processes by name in `processes`; `links[agent]` the agent's proxies (redis, database)."""

    def __init__(self, tmp: Path, worker_id: str, redis_args: tuple[str, ...] = (),
                 database_behind_link: bool = False, database_url: str | None = None):  # fmt: skip
        """`database_url`: an empty database the caller made (and drops); by default a
        SQLite file in `tmp`, or a database of this test run on TEST_DATABASE_URL's server."""
        self.tmp = tmp
        self.logs = tmp / "logs"
        self.logs.mkdir()
        self.redis_dir = tmp / "redis"
        self.redis_dir.mkdir()
        self.redis_args = redis_args
        self.redis_process, self.redis_port = start_private_redis(self.redis_dir, *redis_args)
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        base = os.environ.get("TEST_DATABASE_URL")
        if database_url is not None:
            self.database_url = database_url
        elif base:
            self.database_url = _worker_database(base, f"{worker_id}_faults_{tmp.name}")
        else:
            self.database_url = f"sqlite:///{tmp / 'zdm.sqlite3'}"
        self.postgres = self.database_url.startswith("postgresql")
        # every process, and the test's own app, reach PostgreSQL through `database_link`
        self.database_link = None
        if database_behind_link and self.postgres:
            self.database_link, self.database_url = LinkProxy.for_url(self.database_url)
        self.repository = tmp / "repository"
        self.restores = tmp / "restores"
        self.processes: dict[str, Process] = {}
        self._commands: dict[str, tuple[list[str], dict]] = {}  # name -> (args, env)
        self.links: dict[str, dict[str, LinkProxy]] = {}
        self.env = service_env(
            self.database_url,
            tmp,
            self.redis_url,
            ZDM_AGENT_CENTER=CENTER,
            ZDM_AGENT_HEARTBEAT_SECONDS="2",
            ZDM_RUN_LEASE_SECONDS="6",
            ZDM_SWEEP_SECONDS="2",
            ZDM_RESTORE_ROOTS=str(self.restores),
        )
        result = flask_cli(self.env, "zdm", "init")
        assert result.returncode == 0, result.stderr

        database_url, redis_url, restores = self.database_url, self.redis_url, [str(self.restores)]

        class StackConfig(config.Config):
            SQLALCHEMY_DATABASE_URI = database_url
            REDIS_URL = redis_url
            ZDM_RESTORE_ROOTS = restores

        self.app = create_app(StackConfig)
        self.app.before_request(lambda: db.session.expire_all())

    # ---- processes -------------------------------------------------------------------------

    def start(self, name: str, args: list[str], env: dict | None = None) -> Process:
        process = Process(name, args, env or self.env, self.logs)
        self.processes[name] = process
        self._commands[name] = (args, env or self.env)
        return process

    def kill(self, name: str) -> None:
        """kill -9 the process `name` and its children (its pool), as a crash would."""
        self.processes[name].kill()

    def restart(self, name: str) -> Process:
        """Start `name` again as it was started, its output appended to the same log."""
        args, env = self._commands[name]
        pidfile = self.tmp / f"{name}.pid"  # a beat's, left behind by kill -9
        pidfile.unlink(missing_ok=True)
        return self.start(name, args, env)

    def start_control(self, name: str = "control") -> Process:
        return self.start(name, celery("worker", "-Q", "zdm.control", "-n", f"{name}@%h", "-c", "1",
                                       "--without-mingle", "--without-gossip", "-l", "INFO"))  # fmt: skip

    def start_beat(self, name: str = "beat") -> Process:
        (self.tmp / f"{name}.pid").unlink(missing_ok=True)
        return self.start(name, celery("beat", "-S", "workers.beat.scheduler:ZdmScheduler", "-l", "INFO",
                                       f"--pidfile={self.tmp / name}.pid",
                                       f"--schedule={self.tmp / name}.db"))  # fmt: skip

    def agent_env(self, server: str, partitions: dict[str, Path], behind_links: bool) -> dict:
        env = dict(
            self.env,
            ZDM_AGENT_SERVER=server,
            ZDM_AGENT_PARTITIONS=",".join(f"{k}={v}" for k, v in partitions.items()),
        )
        if behind_links:
            if server not in self.links:
                redis_link, redis_url = LinkProxy.for_url(self.redis_url)
                redis_link.mark = b"SUBSCRIBE"  # the worker's remote control (pub/sub)
                self.links[server] = {"redis": redis_link}
                self.links[server]["redis_url"] = redis_url  # type: ignore[assignment]
                if self.postgres:
                    db_link, db_url = LinkProxy.for_url(self.database_url)
                    self.links[server]["database"] = db_link
                    self.links[server]["database_url"] = db_url  # type: ignore[assignment]
            links = self.links[server]
            env["REDIS_URL"] = links["redis_url"]
            if "database_url" in links:
                env["DATABASE_URL"] = links["database_url"]
        return env

    def start_agent(self, name: str, server: str, partitions: dict[str, Path],
                    behind_links: bool = False) -> Process:  # fmt: skip
        env = self.agent_env(server, partitions, behind_links)
        return self.start(name, celery("worker", "-Q", f"zdm.server.{server}", "-n", f"{name}@%h",
                                       "-c", "2", "--without-mingle", "--without-gossip",
                                       "-l", "INFO"), env)  # fmt: skip

    def cut(self, server: str) -> None:
        """Both links down: the pub/sub connection first (see `LinkProxy.cut`), then the rest."""
        for link in self.proxies(server):
            link.cut(first_marked=0.5)

    def restore_link(self, server: str) -> None:
        for link in self.proxies(server):
            link.restore()

    def proxies(self, server: str) -> list[LinkProxy]:
        return [v for v in self.links.get(server, {}).values() if isinstance(v, LinkProxy)]

    # ---- redis -----------------------------------------------------------------------------

    def stop_redis(self) -> None:
        self.redis_process.terminate()  # SIGTERM: with appendonly, redis writes its AOF first
        self.redis_process.wait(20)

    def start_redis_again(self) -> None:
        """On the same port and directory (its AOF, if it keeps one)."""
        extra = [a for a in self.redis_args]
        self.redis_process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port), "--save", "",
             "--appendonly", "no", "--dir", str(self.redis_dir), *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(host="127.0.0.1", port=self.redis_port, socket_timeout=1)
        wait_until(lambda: _pings(client), 20, interval=0.1, what="redis restarted")
        client.close()

    # ---- the service's records ---------------------------------------------------------------

    def setup_admin_and_repository(self) -> None:
        with self.app.app_context():
            self.auth = bearer(make_user())
            client = self.app.test_client()
            response = client.post(
                "/api/v1/repositories",
                json={"center": CENTER, "type": "local", "path": str(self.repository)},
                headers=self.auth,
            )
            assert response.status_code == 201, response.get_data(as_text=True)

    def wait_registered(self, server: str, partitions: int, seconds: float = 90) -> None:
        with self.app.app_context():

            def registered():
                db.session.remove()
                row = db.session.scalar(select(Server).where(Server.name == server))
                return row is not None and len(row.partitions) == partitions

            wait_until(registered, seconds, what=f"agent of {server} registered")

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()
        for server in list(self.links):
            for link in self.proxies(server):
                link.close()
        if self.database_link is not None:
            self.database_link.close()
        if self.redis_process.poll() is None:
            self.redis_process.terminate()
            try:
                self.redis_process.wait(10)
            except subprocess.TimeoutExpired:
                self.redis_process.kill()

    def __enter__(self) -> FaultStack:
        return self

    def __exit__(self, failure_type, *_exc) -> None:
        """Stops everything; on a failure, prints what each process logged last first."""
        if failure_type is not None:
            print(self.logs_tail())
        self.stop()

    def logs_tail(self, lines: int = 60) -> str:
        return "\n".join(f"--- {n}\n{p.tail(lines)}" for n, p in self.processes.items())


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def register(stack: FaultStack, client, job_name: str, server: str, partition: str, **changes):
    data = {
        "center": CENTER,
        "server": server,
        "type": "full",
        "partition": [partition],
        "repository": {"id": 1, "type": "local", "path": str(stack.repository)},
        "jobName": job_name,
        "user": "admin@example.com",
        "schedule": {"type": "custom", "description": "* * * * *"},
        "compression": "lz4",
        **changes,
    }
    data = {k: v for k, v in data.items() if v is not None}
    response = client.post("/api/v1/backups", json=data, headers=stack.auth)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["data"]["results"][0]["id"]


def runs_of(job_id: int) -> list[Run]:
    db.session.remove()
    return list(db.session.scalars(select(Run).where(Run.job_id == job_id).order_by(Run.id)))


def points_of(job_id: int) -> list[RecoveryPoint]:
    db.session.remove()
    return list(
        db.session.scalars(
            select(RecoveryPoint).where(RecoveryPoint.job_id == job_id).order_by(RecoveryPoint.id)
        )
    )
