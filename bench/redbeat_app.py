"""The Celery app that runs celery-redbeat, the anchor of `bench/scheduler.py`:

    REDIS_URL=redis://127.0.0.1:PORT/1 PYTHONPATH=. celery -A redbeat_app beat \
        -S redbeat.RedBeatScheduler -l INFO          # (working directory bench/)

The product's Celery settings (`celeryconfig`), redbeat's schedule in the same Redis, no
tasks of its own: beat sends each entry by task name to the queue the entry names, as our
beat sends runs to `zdm.server.<name>`.
"""

import os

from celery import Celery


def make_app(redis_url: str) -> Celery:
    app = Celery("zdm-redbeat-bench")
    app.config_from_object("celeryconfig")
    app.conf.update(
        broker_url=redis_url,
        redbeat_redis_url=redis_url,
        redbeat_redis_options={},
        redbeat_key_prefix="redbeat:",
        beat_schedule={},
    )
    return app


app = make_app(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/1"))
