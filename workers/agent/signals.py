"""What the agent does when its worker starts and stops (Celery signals).

Every worker process of the service loads this module (`workers/celery_app.py`), but only the
worker that consumes `zdm.server.<ZDM_AGENT_SERVER>` acts on it: not the control worker
started from the same environment.
"""

from __future__ import annotations

import logging

from celery.signals import worker_ready, worker_shutdown

import config
from workers.agent.presence import ServerHeartbeat, mark_online, register_agent
from workers.agent.settings import AgentSettings, agent_settings
from workers.agent.verification import reconcile_server
from workers.app_context import worker_app

log = logging.getLogger(__name__)

_heartbeat: ServerHeartbeat | None = None


def _is_agent_worker(consumer, settings: AgentSettings | None) -> bool:
    if settings is None:
        return False
    try:
        names = {queue.name for queue in consumer.task_consumer.queues}
    except AttributeError:
        return False
    return f"zdm.server.{settings.server}" in names


@worker_ready.connect
def _agent_started(sender=None, **_kwargs):
    global _heartbeat
    settings = agent_settings()
    if not _is_agent_worker(sender, settings):
        return
    app = worker_app()
    with app.app_context():
        try:
            _register(settings)
            register_later = None
        except Exception as exc:  # the database is out of reach: keep trying, never exit
            log.warning("could not register the agent (%s); its heartbeat keeps trying", exc)
            register_later = lambda: _register(settings)  # noqa: E731
        _heartbeat = ServerHeartbeat(app, settings.server, config.agent_config().heartbeat_seconds,
                                     register=register_later)  # fmt: skip
        _heartbeat.start()


def _register(settings: AgentSettings) -> None:
    server = register_agent(settings)
    log.info("agent for %s serving %s", server.name, [p.name for p in settings.partitions])
    try:  # the database agrees with the repositories before the first run
        reconcile_server(server.id)
    except Exception:
        log.exception("reconciling the repositories of %s failed", server.name)


@worker_shutdown.connect
def _agent_stopping(sender=None, **_kwargs):
    settings = agent_settings()
    if settings is None or _heartbeat is None:
        return
    _heartbeat.stopped.set()
    with worker_app().app_context():
        mark_online(settings.server, False)
