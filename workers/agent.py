"""The agent: a Celery worker for one protected server.

Started by the Procfile's `agent` entry with its settings from the environment:
- `ZDM_AGENT_SERVER`: the server's name; the agent consumes `zdm.server.<name>`.
- `ZDM_AGENT_CENTER`: the server's center (created when missing), default `default`.
- `ZDM_AGENT_PARTITIONS`: `name=path,...`, e.g. `/dev/sda1=/srv/img/sda1.img,/data=/srv/data`;
  a path that is a directory is a `directory` partition, anything else `block`. Default: the
  machine's real block devices (`/sys/class/block`) and mounted filesystems.

On start it upserts its server and partitions, then keeps a heartbeat (`online`, `lastSeen`).
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from celery.signals import worker_ready, worker_shutdown
from sqlalchemy import select, update

from app.database import db_now
from app.extensions import db
from app.models import Center, Partition, Server
from app.timeutil import utcnow

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = float(os.environ.get("ZDM_AGENT_HEARTBEAT_SECONDS", 15))
_REAL_FILESYSTEMS = {"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "vfat", "ntfs", "zfs"}


@dataclass(frozen=True)
class ServedPartition:
    name: str
    path: str
    kind: str  # block | directory
    size: int | None


@dataclass(frozen=True)
class AgentSettings:
    center: str
    server: str
    partitions: tuple[ServedPartition, ...]

    def source_of(self, partition_name: str) -> ServedPartition | None:
        return next((p for p in self.partitions if p.name == partition_name), None)


def agent_settings() -> AgentSettings | None:
    """This process's agent settings, or None when it is not an agent."""
    server = os.environ.get("ZDM_AGENT_SERVER", "").strip()
    if not server:
        return None
    spec = os.environ.get("ZDM_AGENT_PARTITIONS", "").strip()
    partitions = parse_partitions(spec) if spec else discover_partitions()
    return AgentSettings(os.environ.get("ZDM_AGENT_CENTER", "default").strip(), server, partitions)


def parse_partitions(spec: str) -> tuple[ServedPartition, ...]:
    served = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ValueError(f"ZDM_AGENT_PARTITIONS: '{item}' is not name=path")
        served.append(_describe(name.strip(), os.path.abspath(path.strip())))
    return tuple(served)


def _describe(name: str, path: str) -> ServedPartition:
    try:
        info = os.stat(path)
    except OSError:
        return ServedPartition(name, path, "block", None)
    if stat.S_ISDIR(info.st_mode):
        return ServedPartition(name, path, "directory", None)
    size = info.st_size
    if stat.S_ISBLK(info.st_mode):
        with open(path, "rb") as device:
            size = device.seek(0, os.SEEK_END)
    return ServedPartition(name, path, "block", size)


def discover_partitions() -> tuple[ServedPartition, ...]:
    """The machine's block devices and mounted real filesystems."""
    found = []
    for entry in sorted(Path("/sys/class/block").glob("*")):
        device = Path("/dev") / entry.name
        if device.exists() and not entry.name.startswith(("loop", "ram", "zram")):
            found.append(_describe(str(device), str(device)))
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        mounts = []
    for line in mounts:
        fields = line.split()
        if len(fields) >= 3 and fields[2] in _REAL_FILESYSTEMS:
            found.append(ServedPartition(fields[1], fields[1], "directory", None))
    return tuple(found)


def register_agent(settings: AgentSettings) -> Server:
    """Upsert the agent's center, server and partitions."""
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
    db.session.commit()
    return server


def mark_online(server_name: str, online: bool) -> None:
    """Stamp the server's heartbeat with the database's clock, not this host's."""
    with db.engine.begin() as conn:
        conn.execute(
            update(Server)
            .where(Server.name == server_name)
            .values(online=online, last_seen=db_now())
        )


class Heartbeat(threading.Thread):
    def __init__(self, server_name: str, interval: float = HEARTBEAT_SECONDS):
        super().__init__(name="zdm-agent-heartbeat", daemon=True)
        self.server_name, self.interval = server_name, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        from workers.celery_app import flask_app

        with flask_app.app_context():
            while not self.stopped.wait(self.interval):
                try:
                    mark_online(self.server_name, True)
                except Exception as exc:  # the database may be briefly unavailable
                    log.warning("agent heartbeat failed: %s", exc)


_heartbeat: Heartbeat | None = None


def _is_agent_worker(consumer, settings: AgentSettings | None) -> bool:
    """Only the worker that consumes `zdm.server.<server>` is the agent (not the control
    worker started from the same environment)."""
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
    from workers.celery_app import flask_app

    with flask_app.app_context():
        server = register_agent(settings)
        log.info("agent for %s serving %s", server.name, [p.name for p in settings.partitions])
        from workers.verification import reconcile_server

        try:  # the database agrees with the repositories before the first run
            reconcile_server(server.id)
        except Exception:
            log.exception("reconciling the repositories of %s failed", server.name)
        _heartbeat = Heartbeat(settings.server)
        _heartbeat.start()


@worker_shutdown.connect
def _agent_stopping(sender=None, **_kwargs):
    settings = agent_settings()
    if settings is None or _heartbeat is None:
        return
    _heartbeat.stopped.set()
    from workers.celery_app import flask_app

    with flask_app.app_context():
        mark_online(settings.server, False)
