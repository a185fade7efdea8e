"""Celery settings for the ZDM workers (`celery -A workers ...` reads this module).

Chosen for long backup tasks:
- acks late + prefetch 1: a task leaves Redis only when it has finished, and a worker
  holds one task at a time, so a crashed agent's run is redelivered rather than lost;
  the database (one run record per job and fire time) makes redelivery harmless.
- visibility timeout longer than any run: Redis would otherwise hand a still-running
  task to a second worker after the timeout.
- no result backend: run state lives in the database, so results never pile up in Redis.
"""

import config

broker_url = config.redis_url()
broker_connection_retry_on_startup = True
broker_transport_options = {"visibility_timeout": config.visibility_timeout_seconds()}

task_ignore_result = True
result_backend = None
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1

task_default_queue = "zdm.control"
task_serializer = "json"
accept_content = ["json"]

timezone = "UTC"
enable_utc = True

# Flower shows tasks from these events.
worker_send_task_events = True
task_send_sent_event = True
