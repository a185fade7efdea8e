"""Sending work to Celery queues from the web side (and beat), by task name only:
the web side never imports the workers' code."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from celery import Celery
from flask import current_app
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

BACKUP_TASK = "zdm.backup.run"
RESTORE_TASK = "zdm.restore.run"
PURGE_TASK = "zdm.repository.purge"
VERIFY_TASK = "zdm.repository.verify"
VERIFICATION_FINISHED_TASK = "zdm.control.verification_finished"
RUN_FINISHED_TASK = "zdm.control.run_finished"
CONTROL_QUEUE = "zdm.control"

log = logging.getLogger(__name__)

_clients: dict[str, Celery] = {}

# Fail fast when Redis is down: the caller answers 503 instead of hanging.
_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


def server_queue(server_name: str) -> str:
    return f"zdm.server.{server_name}"


def celery_client() -> Celery:
    url = current_app.config["REDIS_URL"]
    if url not in _clients:
        client = Celery("zdm-dispatch")
        client.config_from_object("celeryconfig")
        client.conf.broker_url = url
        _clients[url] = client
    return _clients[url]


def send(task: str, queue: str, kwargs: dict, expires: datetime | None = None) -> None:
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    celery_client().send_task(
        task, kwargs=kwargs, queue=queue, expires=expires, retry=True, retry_policy=_RETRY_POLICY
    )


def send_many(task: str, messages: list[tuple[str, dict, datetime | None]]) -> int:
    """Send several messages in one Redis pipeline (kombu's `Producer.batch`); returns how
    many were sent: all, or none when the broker failed (then nothing may be assumed sent,
    and a caller that sends again may duplicate some, which the agents' claim makes
    harmless). Beat's fan-out uses it instead of one round trip per message."""
    client = celery_client()
    try:
        with client.producer_or_acquire() as producer, producer.batch(len(messages) + 1):
            for queue, kwargs, expires in messages:
                if expires is not None and expires.tzinfo is None:
                    expires = expires.replace(tzinfo=UTC)
                client.send_task(
                    task, kwargs=kwargs, queue=queue, expires=expires, producer=producer
                )
    except (BrokerError, RedisError, OSError) as exc:  # a pipeline's errors are redis-py's
        log.warning("the broker failed; %d messages were not sent: %s", len(messages), exc)
        return 0
    return len(messages)
