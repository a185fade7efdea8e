"""The Celery app of every ZDM worker process (beat, control worker, agents, Flower).

It imports none of the task modules: Celery imports the modules named in `include` when a
worker or beat starts, and they register their tasks with `shared_task`, so nothing imports
back into this module. Tasks run inside the process's Flask app context
(`workers/app_context.py`), built when the first task runs.
"""

import contextlib
import os
import sys

import kombu.transport as kombu_transport
from celery import Celery, Task
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    celeryd_init,
    worker_process_init,
)
from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

import config
from app.extensions import db
from app.log_format import format_handlers, json_from_the_start, json_line, json_logs
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


class _RedisChannel(kombu_redis.Channel):
    """kombu's Redis channel, except that a channel whose connection was closed fails with a
    connection error, which Celery survives, instead of an AttributeError, which ends the
    worker.

    When the Redis link breaks while the worker holds an unacknowledged message (acks late: a
    backup in progress), Celery throws the broken connection away (`Connection.collect`),
    which clears the transport's `client` even when closing the channel failed half-way
    (its socket is broken too). Whatever then uses that channel — closing it again to give the
    unacknowledged message back, or acknowledging the message when the running backup ends —
    builds a Redis client from `client` and raised AttributeError ("'NoneType' object has no
    attribute 'hostname'", kombu 5.7). Celery calls that an unrecoverable error: the worker
    stopped after its running task, and an agent on another host stayed gone until someone
    restarted it (issue 11). As a connection error it is what it is: the ack is lost with the
    connection, the message stays in Redis's unacknowledged set and comes back after the
    visibility timeout, where the run's claim ignores it; the run itself is decided in the
    database (its lease, the control worker's sweep)."""

    def _connparams(self, asynchronous=False):
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection was closed after a connection loss")
        return super()._connparams(asynchronous=asynchronous)


class RedisTransport(kombu_redis.Transport):
    Channel = _RedisChannel


# redis:// and rediss:// broker URLs use it (kombu's table of transports): the URL, the logs
# and Flower still say redis://. Set before any connection is made (this module is the app).
for _scheme in ("redis", "rediss"):
    kombu_transport.TRANSPORT_ALIASES[_scheme] = "workers.celery_app:RedisTransport"

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


# ---- logs: ZDM_LOG_FORMAT (app/log_format.py) ----------------------------------------------


json_from_the_start()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _log_format(logger=None, **_kwargs):
    format_handlers(logger)


@celeryd_init.connect
def _no_banner_in_json(instance=None, **_kwargs):
    # The worker's start banner is printed, not logged: with JSON logs, every line is JSON.
    if json_logs():
        instance.quiet = True


def _say_in_json(message, f=sys.__stderr__):
    """What a Celery worker says to its terminal (`worker: Warm shutdown`, from a signal
    handler, with a raw write), as a JSON line."""
    with contextlib.suppress(OSError, AttributeError, ValueError):
        os.write(f.fileno(), (json_line(message, logger="celery.apps.worker") + "\n").encode())


if json_logs():
    import celery.apps.worker

    celery.apps.worker.safe_say = _say_in_json


class _Beat(celery_app.Beat):
    """`celery beat`, without its printed banner when the logs are JSON."""

    def __init__(self, *args, **kwargs):
        if json_logs():
            kwargs["quiet"] = True
        super().__init__(*args, **kwargs)


celery_app.Beat = _Beat


@worker_process_init.connect
def _fresh_database_connections(**_kwargs):
    # A forked pool process must not share its parent's database connections.
    app = built_app()
    if app is not None:
        with app.app_context():
            db.engine.dispose(close=False)
