"""The Flask app of a Celery process (beat, control worker, agent): settings, the database and
the models, without the API (`app.create_worker_app`). Built on first use — when the first task
runs, the scheduler starts or the agent registers — so importing the Celery app stays light.
"""

from __future__ import annotations

import threading

from flask import Flask

from app import create_worker_app

_app: Flask | None = None
_lock = threading.Lock()


def worker_app() -> Flask:
    """This process's app, built once."""
    global _app
    if _app is None:
        with _lock:
            if _app is None:
                _app = create_worker_app()
    return _app


def built_app() -> Flask | None:
    """The app if this process has built it already, else None (nothing is built)."""
    return _app


def __getattr__(name: str):
    # `from workers.app_context import flask_app` builds the app at that moment (beat's
    # scheduler takes it so when it starts).
    if name == "flask_app":
        return worker_app()
    raise AttributeError(name)
