"""The agent's presence: its server and partitions in the database, and the server's heartbeat
(`online`, `lastSeen`) every `ZDM_AGENT_HEARTBEAT_SECONDS`.

This heartbeat says the agent is alive; a run's lease (`lease.py`) says its run is. It also
reports what the agent can do (`capabilities()`): its engine's version and its master key's
fingerprint, which registration and restores check (docs/decisions.md, "Agent capabilities").
"""

from __future__ import annotations

import logging
import threading

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.database import db_now
from app.extensions import db
from app.models import Center, Partition, Server
from app.timeutil import utcnow
from workers import engine
from workers.agent.settings import AgentSettings

log = logging.getLogger(__name__)


def key_fingerprint() -> str | None:
    """This agent's master key's fingerprint (never the key), or None without a usable key."""
    try:
        return engine.configured_key_fingerprint()
    except engine.EngineError as exc:  # a malformed ZDM_MASTER_KEY: as good as none
        log.warning("the master key cannot be used: %s", exc)
        return None


def capabilities() -> dict:
    """What this agent reports in its heartbeat: the columns of its server's row."""
    return {"engine_version": engine.ENGINE_VERSION, "master_key_fingerprint": key_fingerprint()}


def register_agent(settings: AgentSettings) -> Server:
    """Upsert the agent's center, server and partitions. Agents starting together may race
    to create the same center, server or partition: the loser of a race reads the winner's
    row and goes on (a unique constraint decides; tried up to three times)."""
    for _ in range(2):
        try:
            return _upsert(settings)
        except IntegrityError:
            db.session.rollback()
            log.info("another agent registered the same center or server first; reading it")
    return _upsert(settings)


def _upsert(settings: AgentSettings) -> Server:
    center = db.session.scalar(select(Center).where(Center.name == settings.center))
    if center is None:
        center = Center(name=settings.center, description="created by an agent")
        db.session.add(center)
    server = db.session.scalar(select(Server).where(Server.name == settings.server))
    if server is None:
        server = Server(name=settings.server, center=center)
        db.session.add(server)
    known = {p.name: p for p in server.partitions}
    for position, served in enumerate(settings.partitions):
        partition = known.get(served.name) or Partition(name=served.name, server=server)
        partition.kind, partition.size, partition.position = served.kind, served.size, position
        partition.mountpoint = served.path if served.kind == "directory" else None
        if served.name not in known:
            server.partitions.append(partition)
    server.online, server.last_seen = True, utcnow()
    for column, value in capabilities().items():
        setattr(server, column, value)
    db.session.commit()
    return server


def mark_online(server_name: str, online: bool, reported: dict | None = None) -> None:
    """Stamp the server's heartbeat with the database's clock, not this host's, with what the
    agent `reported` (`capabilities()`) when given."""
    with db.engine.begin() as conn:
        conn.execute(
            update(Server)
            .where(Server.name == server_name)
            .values(online=online, last_seen=db_now(), **(reported or {}))
        )


class ServerHeartbeat(threading.Thread):
    """Marks the server online every `interval` seconds until `stopped` is set. `register`:
    the agent's registration when it could not be done at start (the database was out of
    reach), tried first, every `interval`, until it works."""

    def __init__(self, app: Flask, server_name: str, interval: float, register=None):
        super().__init__(name="zdm-agent-heartbeat", daemon=True)
        self.app, self.server_name, self.interval = app, server_name, interval
        self.register = register
        self.stopped = threading.Event()

    def run(self) -> None:
        with self.app.app_context():
            while self.register is not None and not self.stopped.wait(self.interval):
                try:
                    self.register()
                    self.register = None
                except Exception as exc:
                    db.session.rollback()
                    log.warning("registering the agent failed again: %s", exc)
            while not self.stopped.wait(self.interval):
                try:
                    mark_online(self.server_name, True, capabilities())
                except Exception as exc:  # the database may be briefly unavailable
                    log.warning("agent heartbeat failed: %s", exc)
