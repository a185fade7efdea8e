"""The web side of ZDM: the Flask application factories.

`create_app` builds the web process's app: the API and its docs, the login throttle, the CLI.
`create_worker_app` builds what a Celery process needs of it: settings, the database and the
models, with no API (`workers/app_context.py`).
"""

import os
from pathlib import Path

from flask import Flask
from sqlalchemy.engine import make_url

import config
from app.extensions import db


def create_app(settings: object | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_object(settings or config.Config)
    app.json.sort_keys = False
    app.json.ensure_ascii = False  # Korean messages as text, as the seed shows them
    create_private_database_file(app)
    register_database(app)
    register_extensions(app)
    register_api(app)
    register_login_throttle(app)
    register_commands(app)
    return app


def create_worker_app(settings: object | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_object(settings or config.Config)
    create_private_database_file(app)
    register_database(app)
    return app


def create_private_database_file(app: Flask) -> None:
    """The SQLite file holds password hashes and token digests: it is created 0600 (in a
    directory created 0700) before SQLAlchemy opens it, and an existing one is tightened.
    SQLite gives its -wal and -shm files the mode of the database file."""
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    path = Path(url.database)
    if not path.is_absolute():  # Flask-SQLAlchemy reads it relative to the instance folder
        path = Path(app.instance_path) / path
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # an empty file is a new database
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        _owner_only(file)


def _owner_only(file: Path) -> None:
    try:
        status = file.stat()
    except FileNotFoundError:
        return
    if status.st_mode & 0o077 and status.st_uid == os.geteuid():
        file.chmod(0o600)


def register_database(app: Flask) -> None:
    from app import models  # noqa: F401  (the tables, for the app and for migrate)
    from app.database import configure_engine_events, engine_options

    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(
        app.config["SQLALCHEMY_DATABASE_URI"], app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    )
    db.init_app(app)
    with app.app_context():
        configure_engine_events(db.engine)


def register_extensions(app: Flask) -> None:
    """The web process's own: autocommit for requests that only read, and Flask-Migrate (for
    `flask zdm init`)."""
    from flask_migrate import Migrate

    from app.database import autocommit_requests

    autocommit_requests(app)
    migrate = Migrate(render_as_batch=True, compare_type=True)
    migrate.init_app(app, db, directory=str(Path(__file__).resolve().parent.parent / "migrations"))


def register_api(app: Flask) -> None:
    from app.api import register_blueprints
    from app.http import ZdmApi, register_request_hooks

    api = ZdmApi(app)
    register_request_hooks(app)
    register_blueprints(api)
    app.extensions["zdm_api"] = api


def register_login_throttle(app: Flask) -> None:
    from app.api.tokens import login_blp
    from app.login_throttle import throttle_failed_logins

    throttle_failed_logins(app, login_blp)


def register_commands(app: Flask) -> None:
    from app.cli import zdm

    app.cli.add_command(zdm)
