"""The Celery side of ZDM, one package per process: beat's scheduler (`scheduler.py`), the
control worker (`control/`), the agent (`agent/`), the backup engine (`engine/`), and the
Celery app that registers their tasks (`celery_app.py`). See docs/architecture.md.

`celery -A workers ...` looks up `workers.app`; it is loaded lazily so that
`python -m workers.engine` (which imports neither Flask nor Celery) stays light.
"""

import sys
from pathlib import Path


def __getattr__(name: str):
    if name in ("app", "celery"):
        # Celery puts the working directory on sys.path only while it imports this
        # package; the app it then loads needs the project root (for `app`, `config`).
        root = str(Path(__file__).resolve().parent.parent)
        if root not in sys.path:
            sys.path.insert(0, root)
        from workers.celery_app import celery_app

        return celery_app
    raise AttributeError(name)
