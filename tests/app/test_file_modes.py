"""Files holding secrets and the SQLite database are created 0600, their directory 0700
(SPEC "Trust: Access"), whatever the process umask; real files on disk."""

import os
import stat
import subprocess
import sys

import pytest
from sqlalchemy import text

import config
from app import create_app
from app.extensions import db
from tests.end_to_end.processes import ROOT, flask_cli, service_env


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def usual_umask():
    previous = os.umask(0o022)  # the usual umask: files 0644, directories 0755
    yield
    os.umask(previous)


def test_sqlite_file_and_its_wal_and_shm_are_0600_in_a_0700_directory(
    tmp_path, redis_url, usual_umask
):
    database = tmp_path / "var" / "zdm.sqlite3"

    class Fresh(config.Config):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{database}"
        REDIS_URL = redis_url

    app = create_app(Fresh)
    with app.app_context():
        with db.engine.connect() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
            connection.commit()  # WAL mode: the -wal and -shm files exist while connected
            files = [
                database,
                database.with_name("zdm.sqlite3-wal"),
                database.with_name("zdm.sqlite3-shm"),
            ]
            modes = {path.name: mode(path) for path in files}
        db.engine.dispose()

    assert modes == {"zdm.sqlite3": 0o600, "zdm.sqlite3-wal": 0o600, "zdm.sqlite3-shm": 0o600}
    assert mode(database.parent) == 0o700


def test_zdm_init_creates_a_private_database(tmp_path, redis_url, usual_umask):
    database = tmp_path / "var" / "zdm.sqlite3"
    env = service_env(f"sqlite:///{database}", tmp_path, redis_url)

    assert flask_cli(env, "zdm", "init").returncode == 0

    assert mode(database) == 0o600
    assert mode(database.parent) == 0o700


def test_an_existing_readable_database_is_tightened(tmp_path, redis_url, usual_umask):
    database = tmp_path / "zdm.sqlite3"
    database.touch(mode=0o644)
    database.chmod(0o644)

    class Existing(config.Config):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{database}"
        REDIS_URL = redis_url

    create_app(Existing)

    assert mode(database) == 0o600


def flower_config(var_dir):
    """Load workers/flowerconfig.py as Flower does, in a process of its own."""
    env = {**os.environ, "ZDM_VAR_DIR": str(var_dir)}
    env.pop("ZDM_FLOWER_PASSWORD", None)
    return subprocess.run(
        [sys.executable, "-c", "import workers.flowerconfig as c; print(c.basic_auth[0])"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_flower_password_is_created_0600_in_a_0700_directory(tmp_path, usual_umask):
    var = tmp_path / "var"

    loaded = flower_config(var)

    assert loaded.returncode == 0, loaded.stderr
    password = (var / "flower-password").read_text().strip()
    assert loaded.stdout.strip() == f"admin:{password}" and len(password) >= 20
    assert mode(var / "flower-password") == 0o600
    assert mode(var) == 0o700
    assert flower_config(var).stdout == loaded.stdout  # kept, not made anew


def test_a_readable_flower_password_is_tightened(tmp_path, usual_umask):
    var = tmp_path / "var"
    var.mkdir()
    (var / "flower-password").write_text("kept-from-before\n")
    (var / "flower-password").chmod(0o644)

    loaded = flower_config(var)

    assert loaded.stdout.strip() == "admin:kept-from-before"
    assert mode(var / "flower-password") == 0o600
