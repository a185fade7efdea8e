"""The Celery app of every ZDM worker process (beat, control worker, agents, Flower).

It imports none of the task modules: Celery imports the modules named in `include` when a
worker or beat starts, and they register their tasks with `shared_task`, so nothing imports
back into this module. Tasks run inside the process's Flask app context
(`workers/app_context.py`), built when the first task runs.
"""

from celery import Celery, Task
from celery.signals import worker_process_init

import config
from app.extensions import db
from workers.app_context import built_app, worker_app

TASK_MODULES = [
    "workers.agent.tasks",  # zdm.backup.run, zdm.restore.run, zdm.repository.*
    "workers.agent.signals",  # the agent registers itself and keeps its server's heartbeat
    "workers.control.tasks",  # zdm.control.*
]


class FlaskTask(Task):
    def __call__(self, *args, **kwargs):
        with worker_app().app_context():
            return self.run(*args, **kwargs)


celery_app = Celery("zdm", task_cls=FlaskTask, include=TASK_MODULES)
celery_app.config_from_object("celeryconfig")
celery_app.conf.beat_scheduler = "workers.beat.scheduler:ZdmScheduler"
_sweep_seconds = config.sweep_seconds()
celery_app.conf.beat_schedule = {
    "sweep-runs": {
        "task": "zdm.control.sweep",
        "schedule": _sweep_seconds,
        "options": {"queue": "zdm.control", "expires": _sweep_seconds},
    }
}


@worker_process_init.connect
def _fresh_database_connections(**_kwargs):
    # A forked pool process must not share its parent's database connections.
    app = built_app()
    if app is not None:
        with app.app_context():
            db.engine.dispose(close=False)
