"""The web side of ZDM: the Flask application factory."""

from pathlib import Path

from flask import Flask

import config
from app.extensions import db, migrate


def create_app(settings: object | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_object(settings or config.Config)
    app.json.sort_keys = False
    app.json.ensure_ascii = False  # Korean messages as text, as the seed shows them
    _ensure_var_dir(app)
    register_extensions(app)
    register_api(app)
    register_commands(app)
    return app


def _ensure_var_dir(app: Flask) -> None:
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)


def register_extensions(app: Flask) -> None:
    from app import models  # noqa: F401  (tables must be known before migrate)
    from app.database import configure_engine_events

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).resolve().parent.parent / "migrations"))
    with app.app_context():
        configure_engine_events(db.engine)


def register_api(app: Flask) -> None:
    from app.api import register_blueprints
    from app.http import ZdmApi, register_request_hooks

    api = ZdmApi(app)
    register_request_hooks(app)
    register_blueprints(api)
    app.extensions["zdm_api"] = api


def register_commands(app: Flask) -> None:
    from app.cli import zdm

    app.cli.add_command(zdm)
