"""The Celery app of every ZDM worker process (beat, control worker, agents, Flower).

Tasks run inside a Flask app context so they share the web side's models and services.
"""

import os

from celery import Celery, Task
from celery.signals import worker_process_init

from app import create_app
from app.extensions import db

flask_app = create_app()

# How often the control worker looks for lost and unstarted runs.
SWEEP_SECONDS = float(os.environ.get("ZDM_SWEEP_SECONDS", 30))


class FlaskTask(Task):
    def __call__(self, *args, **kwargs):
        with flask_app.app_context():
            return self.run(*args, **kwargs)


celery_app = Celery("zdm", task_cls=FlaskTask)
celery_app.config_from_object("celeryconfig")
celery_app.conf.beat_scheduler = "workers.scheduler:ZdmScheduler"
celery_app.conf.beat_schedule = {
    "sweep-runs": {
        "task": "zdm.control.sweep",
        "schedule": SWEEP_SECONDS,
        "options": {"queue": "zdm.control", "expires": SWEEP_SECONDS},
    }
}


@worker_process_init.connect
def _fresh_database_connections(**_kwargs):
    # A forked pool process must not share its parent's database connections.
    with flask_app.app_context():
        db.engine.dispose(close=False)


import workers.agent  # noqa: E402,F401  (signal handlers of the agent process)
import workers.tasks  # noqa: E402,F401  (task registration)
