"""The Celery processes use a light Flask app: importing the Celery app builds none, and the
one a task or the scheduler builds has the database and models but no API."""

import json
import os
import subprocess
import sys

from sqlalchemy import text

import config
from app import create_worker_app
from app.extensions import db
from tests.end_to_end.processes import ROOT

LOAD_THE_CELERY_APP = """
import json, sys
import workers
celery_app = workers.app
celery_app.loader.import_default_modules()  # the task modules, as a worker loads them
from workers.app_context import built_app
print(json.dumps({
    "app_built": built_app() is not None,
    "api_loaded": sorted(m for m in sys.modules if m == "flask_smorest" or m.startswith("app.api")),
    "tasks": sorted(t for t in celery_app.tasks if t.startswith("zdm.")),
}))
"""


def test_loading_the_celery_app_and_its_tasks_builds_no_flask_app_and_no_api(tmp_path):
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD_THE_CELERY_APP],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'never.sqlite3'}"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert loaded.returncode == 0, loaded.stderr
    seen = json.loads(loaded.stdout)
    assert seen == {
        "app_built": False,
        "api_loaded": [],
        "tasks": [
            "zdm.backup.run",
            "zdm.control.run_finished",
            "zdm.control.sweep",
            "zdm.control.verification_finished",
            "zdm.repository.purge",
            "zdm.repository.verify",
            "zdm.restore.run",
        ],
    }
    assert not (tmp_path / "never.sqlite3").exists()


def test_the_worker_app_has_the_database_and_no_api(app, database_url):
    class WorkerConfig(config.Config):
        SQLALCHEMY_DATABASE_URI = database_url

    worker_app = create_worker_app(WorkerConfig)

    with worker_app.app_context():
        assert db.session.execute(text("SELECT count(*) FROM backup_jobs")).scalar() == 0
        db.session.remove()
    assert "zdm_api" not in worker_app.extensions
    assert [rule.rule for rule in worker_app.url_map.iter_rules()] == ["/static/<path:filename>"]


BUILD_BEAT = """
import json, sys
import workers.beat.scheduler
from workers.app_context import worker_app
worker_app()
web_only = ("flask_smorest", "flask_migrate", "alembic", "flask_limiter", "app.api", "app.schemas")
print(json.dumps(sorted({m.split(".")[0] if not m.startswith("app.") else ".".join(m.split(".")[:2])
                         for m in sys.modules if m.startswith(web_only)})))
"""


def test_beat_with_its_app_loads_nothing_of_the_web_process(tmp_path):
    """Beat's resident size (bench/scheduler.py, "beat at rest"): the scheduler and its app
    load neither the API, its schemas, the login throttle nor Alembic (Flask-Migrate)."""
    loaded = subprocess.run(
        [sys.executable, "-c", BUILD_BEAT],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'beat.sqlite3'}"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout) == []
