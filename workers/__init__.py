"""The Celery side of ZDM: the Celery app, beat scheduler, tasks, agent and backup engine.

`celery -A workers ...` looks up `workers.app`; it is loaded lazily so that
`python -m workers.engine` (which imports neither Flask nor Celery) stays light.
"""


def __getattr__(name: str):
    if name in ("app", "celery"):
        from workers.celery_app import celery_app

        return celery_app
    raise AttributeError(name)
