"""Centers, servers, partitions and repositories: creation and how they are shown."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError

from app.errors import ApiError
from app.extensions import db
from app.models import BackupJob, Center, Partition, RecoveryPoint, Repository, Restore, Server
from app.services import lookup
from app.timeutil import iso_utc, utcnow


def center_view(center: Center) -> dict:
    return {"id": center.id, "name": center.name, "description": center.description}


def partition_view(partition: Partition) -> dict:
    return {
        "name": partition.name,
        "mountpoint": partition.mountpoint,
        "kind": partition.kind,
        "size": partition.size,
    }


def server_view(server: Server) -> dict:
    return {
        "id": server.id,
        "name": server.name,
        "center": {"id": server.center.id, "name": server.center.name},
        "description": server.description,
        "online": is_online(server),
        "lastSeen": iso_utc(server.last_seen),
        "agent": None
        if server.engine_version is None
        else {
            "engineVersion": server.engine_version,
            "masterKeyFingerprint": server.master_key_fingerprint,
        },
        "partitions": [partition_view(p) for p in server.partitions],
    }


def is_online(server: Server) -> bool:
    """Online while its agent's heartbeat is fresh: a killed agent cannot say goodbye."""
    fresh = utcnow() - timedelta(seconds=current_app.config["ZDM_AGENT_OFFLINE_SECONDS"])
    return bool(server.online and server.last_seen and server.last_seen > fresh)


def repository_view(repository: Repository) -> dict:
    return {
        "id": repository.id,
        "center": {"id": repository.center.id, "name": repository.center.name},
        "type": repository.type,
        "path": repository.path,
        "verifySchedule": repository.verify_schedule,
        "verifyReadData": repository.verify_read_data,
        "verifyNextAt": iso_utc(repository.verify_next_at),
        "lastVerifiedAt": iso_utc(repository.last_verified_at),
    }


def _commit_unique(conflict: ApiError) -> None:
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise conflict from None


def create_center(data: dict) -> Center:
    center = Center(name=data["name"], description=data.get("description"))
    db.session.add(center)
    _commit_unique(ApiError(409, "center_exists", name=data["name"]))
    return center


def create_server(data: dict) -> Server:
    center = lookup.find_center(data["center"])
    server = Server(name=data["name"], center=center, description=data.get("description"))
    seen = set()
    for position, p in enumerate(data["partitions"]):
        if p["name"] in seen:
            continue
        seen.add(p["name"])
        server.partitions.append(
            Partition(
                name=p["name"],
                mountpoint=p.get("mountpoint"),
                kind=p["kind"],
                size=p.get("size"),
                position=position,
            )
        )
    db.session.add(server)
    _commit_unique(ApiError(409, "server_exists", name=data["name"]))
    return server


def delete_server(server: Server) -> None:
    """Refused (409) while jobs, recovery points or restores refer to the server: nothing is
    cascaded away silently. Jobs deleted earlier go with it, history and all."""
    _refuse_if_referred(
        (BackupJob, _live_jobs(BackupJob.server_id == server.id), "server_has_jobs"),
        (RecoveryPoint, RecoveryPoint.server_id == server.id, "server_has_points"),
        (Restore, Restore.server_id == server.id, "server_has_restores"),
        name=server.name,
    )
    _forget_deleted_jobs(BackupJob.server_id == server.id)
    db.session.delete(server)
    db.session.commit()


def create_repository(data: dict) -> Repository:
    center = lookup.find_center(data["center"])
    repository = Repository(center=center, type=data["type"], path=data["path"])
    if data.get("verifySchedule"):
        from app.services.verification import set_verify_schedule

        set_verify_schedule(repository, data["verifySchedule"], data.get("verifyReadData", 0))
    db.session.add(repository)
    _commit_unique(ApiError(409, "repository_exists", path=data["path"]))
    return repository


def delete_repository(repository: Repository) -> None:
    """Refused (409) while jobs use the repository or recovery points are recorded in it."""
    _refuse_if_referred(
        (BackupJob, _live_jobs(BackupJob.repository_id == repository.id), "repository_has_jobs"),
        (RecoveryPoint, RecoveryPoint.repository_id == repository.id, "repository_has_points"),
        ref=repository.id,
    )
    _forget_deleted_jobs(BackupJob.repository_id == repository.id)
    db.session.delete(repository)
    db.session.commit()


def _refuse_if_referred(*checks, **names) -> None:
    for model, condition, key in checks:
        count = db.session.scalar(db.select(func.count()).select_from(model).where(condition))
        if count:
            raise ApiError(409, key, count=count, **names)


def _live_jobs(condition):
    return condition & BackupJob.deleted_at.is_(None)


def _forget_deleted_jobs(condition) -> None:
    """Deleted jobs keep their rows for their history (SPEC "Identity"); the rows cannot
    outlive the server or repository they name, so they go now, their runs with them."""
    db.session.execute(db.delete(BackupJob).where(condition, BackupJob.deleted_at.is_not(None)))
