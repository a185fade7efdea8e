"""A fresh app on a real database for each test session, and clean tables for each test.

The database is SQLite (a file in a temporary directory) unless TEST_DATABASE_URL names a
PostgreSQL server; then each xdist worker gets a database of its own on it, created here
(named after the worker and this test run, dropped at the end).

Redis: each xdist worker starts a private `redis-server` on a free loopback port, so the
suite never reads or flushes anyone else's Redis. TEST_REDIS_URL points it at a Redis of
your choice instead (the suite then uses databases 15, 14, ... of it, and flushes them).
"""

import functools
import os
import re
import secrets
import shutil
import socket
import subprocess
import time

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import config
from app import create_app
from app.auth import hash_password, issue_token
from app.extensions import db
from app.models import Center, Partition, Repository, Server, User

PASSWORD = "correct horse battery"


# One name per test run, so two runs at once (two checkouts, CI beside a developer) never
# drop each other's databases.
_RUN = f"{os.getpid()}_{secrets.token_hex(3)}"


def _admin_engine(url):
    return create_engine(url, isolation_level="AUTOCOMMIT")


_created_databases: list[str] = []


def _worker_database(base_url: str, worker: str) -> str:
    """A new PostgreSQL database named after the worker and this run; dropped when the
    session ends (pytest_sessionfinish below)."""
    url = make_url(base_url)
    name = re.sub(r"\W", "_", f"{url.database}_{worker}_{_RUN}")
    admin = _admin_engine(url)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    _created_databases.append(name)
    return url.set(database=name).render_as_string(hide_password=False)


def pytest_sessionfinish(session):
    if not _created_databases:
        return
    admin = _admin_engine(make_url(os.environ["TEST_DATABASE_URL"]))
    with admin.connect() as conn:
        for name in _created_databases:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
    _created_databases.clear()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory, worker_id):
    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        return _worker_database(base, worker_id)
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'zdm.sqlite3'}"


@pytest.fixture
def fresh_database_url(tmp_path, worker_id):
    """An empty database for tests that run the service's own processes (CLI, gunicorn)."""
    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        return _worker_database(base, f"{worker_id}_fresh_{secrets.token_hex(2)}")
    return f"sqlite:///{tmp_path / 'fresh.sqlite3'}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_private_redis(directory, *extra: str) -> tuple[subprocess.Popen, int]:
    """A redis-server of the test's own on a free loopback port (no persistence unless
    `extra` asks for it); returns the process and its port once it answers."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed (scripts/setup installs it as root)")
    for _attempt in range(5):
        port = _free_port()
        process = subprocess.Popen(
            [
                server,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(directory),
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if client.ping():
                    client.close()
                    return process, port
            except redis.ConnectionError:
                time.sleep(0.05)
        process.kill()
        process.wait(10)
    pytest.fail("could not start a private redis-server")


@pytest.fixture(scope="session")
def redis_url(worker_id, tmp_path_factory):
    """This xdist worker's own Redis: a private server, or a database of TEST_REDIS_URL
    (15 for gw0 or no xdist, 14 for gw1, ...) when that is set."""
    base = os.environ.get("TEST_REDIS_URL")
    if base:
        number = 15 - (int(worker_id[2:]) if worker_id.startswith("gw") else 0) % 12
        yield f"{base.rstrip('/')}/{number}"
        return
    process, port = start_private_redis(tmp_path_factory.mktemp("redis"))
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def broker(redis_url):
    """The test's Redis database, emptied."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def app(database_url, redis_url):
    class TestConfig(config.Config):
        TESTING = True
        SQLALCHEMY_DATABASE_URI = database_url
        REDIS_URL = redis_url
        ZDM_REPOSITORY_ROOTS = []
        ZDM_RESTORE_ROOTS = ["/var/lib/zdm/restores"]

    application = create_app(TestConfig)
    with application.app_context():
        from flask_migrate import upgrade

        upgrade()
    return application


@pytest.fixture(autouse=True)
def _clean_tables(request):
    """Every test starts with empty tables, ids counting from 1 and no failed logins."""
    if "app" not in request.fixturenames:
        yield
        return
    application = request.getfixturevalue("app")
    with application.app_context():
        # Processes started by other tests (gunicorn, agents) share this Redis and may have
        # counted failed logins there: start from none, too.
        _reset_login_counts(application)
        yield
        empty_tables(application)


def empty_tables(application) -> None:
    """Every table emptied, ids counting from 1 again, no failed logins counted."""
    db.session.rollback()
    db.session.remove()
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))
            conn.execute(text("DELETE FROM sqlite_sequence"))  # AUTOINCREMENT counters
    _reset_login_counts(application)


def _reset_login_counts(application) -> None:
    for limiter in application.extensions.get("limiter", ()):
        limiter.reset()  # failed logins counted in Redis (app.login_throttle)


@pytest.fixture
def client(app):
    return app.test_client()


@functools.cache
def _password_hash() -> str:
    return hash_password(PASSWORD)  # Argon2 is slow on purpose: hash the test password once


def make_user(email="admin@example.com", role="admin") -> User:
    user = User(email=email, password_hash=_password_hash(), role=role)
    db.session.add(user)
    db.session.commit()
    return user


def bearer(user: User) -> dict:
    token, _ = issue_token(user)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(app):
    return make_user()


@pytest.fixture
def auth(admin):
    """Headers of an admin (the seed's user admin@example.com)."""
    return bearer(admin)


@pytest.fixture
def seed_inventory(app, admin):
    """What the seed's examples assume: CENTER-001, web-server-01 and repository 1."""
    return add_seed_inventory()


def add_seed_inventory() -> dict:
    center = Center(name="CENTER-001", description="Seoul")
    server = Server(name="web-server-01", center=center)
    server.partitions = [
        Partition(name="/dev/sda1", kind="block", size=512 * 2**20, position=0),
        Partition(name="/dev/sda2", kind="block", size=1024 * 2**20, position=1),
        Partition(name="/data", mountpoint="/data", kind="directory", position=2),
    ]
    repository = Repository(center=center, type="local", path="/backup/storage")
    db.session.add_all([center, server, repository])
    db.session.commit()
    return {"center": center, "server": server, "repository": repository}


# Jobs and runs (tests/jobs.py): fixtures shared by the API, beat, agent and control tests.
from tests.jobs import broker_down, register  # noqa: E402,F401
