"""Verification of repositories and what the database remembers of a repository's health
(SPEC "Trust"): requesting a verification, its schedule, recording what it found, and
reconciling the database with the points a repository really holds.

Shared by the API (verify on demand, the schedule), beat (scheduled verifications) and the
agent (recording findings and reconciliation), so that each rule is written once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy import delete, select, update

from app.errors import ApiError
from app.extensions import db
from app.models import BackupJob, DamagedObject, RecoveryPoint, Repository, Server, Verification
from app.services import dispatch
from app.services.schedule import Schedule, next_fire_time
from app.timeutil import iso_utc, utcnow

log = logging.getLogger(__name__)


# ---- on demand and on a schedule -----------------------------------------------------------


def verifying_server(repository: Repository) -> Server | None:
    """An agent that uses the repository: the server of one of its live jobs (an online one
    first), else a server that has points in it. The repository is a path on that host."""
    servers = db.session.scalars(
        select(Server)
        .join(BackupJob, BackupJob.server_id == Server.id)
        .where(BackupJob.repository_id == repository.id, BackupJob.deleted_at.is_(None))
        .order_by(Server.online.desc(), Server.last_seen.desc(), Server.id)
        .limit(1)
    ).all()
    if not servers:
        servers = db.session.scalars(
            select(Server)
            .join(RecoveryPoint, RecoveryPoint.server_id == Server.id)
            .where(RecoveryPoint.repository_id == repository.id)
            .order_by(Server.online.desc(), Server.id)
            .limit(1)
        ).all()
    return servers[0] if servers else None


def request_verification(
    repository: Repository, read_data: float, trigger: str, requested_by=None
) -> Verification:
    """Record a verification and send it to an agent that uses the repository."""
    server = verifying_server(repository)
    if server is None:
        raise ApiError(409, "no_agent_for_repository", ref=repository.id)
    verification = Verification(
        repository=repository,
        server=server,
        trigger=trigger,
        read_data=round(read_data),
        requested_by=requested_by,
        state="queued",
    )
    db.session.add(verification)
    db.session.commit()
    try:
        dispatch.send(
            dispatch.VERIFY_TASK,
            dispatch.server_queue(server.name),
            {"verification_id": verification.id, "repository_id": repository.id},
        )
    except (BrokerError, OSError) as exc:
        finish_verification(verification, "failed", f"the message broker is unavailable: {exc}")
        db.session.commit()
        raise ApiError(503, "service_unavailable", component="broker") from None
    return verification


def verify_schedule(repository: Repository) -> Schedule:
    return Schedule("custom", repository.verify_schedule, current_app.config["ZDM_TIMEZONE"])


def set_verify_schedule(repository: Repository, expression: str | None, read_data: int) -> None:
    """Set or clear (None) the repository's verify schedule; beat honours it from its next
    fire time. The expression was validated by the schema (`app.services.schedule`)."""
    repository.verify_schedule = expression
    repository.verify_read_data = read_data
    repository.verify_next_at = (
        next_fire_time(verify_schedule(repository), utcnow()) if expression else None
    )


def fire_due_verifications(now: datetime) -> list[Verification]:
    """Beat: start every scheduled verification that is due. A repository is claimed by a
    conditional UPDATE of `verify_next_at`, so two beats start it once."""
    due = db.session.execute(
        select(Repository.id, Repository.verify_next_at).where(
            Repository.verify_next_at.is_not(None), Repository.verify_next_at <= now
        )
    ).all()
    started = []
    for repository_id, fire_at in due:
        repository = db.session.get(Repository, repository_id)
        following = next_fire_time(verify_schedule(repository), now)
        claimed = db.session.execute(
            update(Repository)
            .where(Repository.id == repository_id, Repository.verify_next_at == fire_at)
            .values(verify_next_at=following)
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        if claimed != 1:
            continue
        try:
            started.append(
                request_verification(repository, repository.verify_read_data, "schedule")
            )
        except ApiError as error:  # no agent uses it (yet), or the broker is down
            log.warning(
                "scheduled verification of repository %s not started: %s", repository_id, error.key
            )
    return started


# ---- what the agent reports ----------------------------------------------------------------


@dataclass
class Findings:
    """What the engine's verify found, in the database's terms."""

    points_checked: int = 0
    objects_checked: int = 0
    problems: list[str] = field(default_factory=list)
    # (point engine id, object id hex, pack id hex) for each damaged or missing object
    damaged: list[tuple[str, str, str]] = field(default_factory=list)
    unreadable_points: list[str] = field(default_factory=list)
    complete: bool = False  # every object was decoded (read_data 100 %)


def claim_verification(verification_id: int) -> Verification | None:
    """queued -> running, once: a redelivered message finds it taken."""
    now = utcnow()
    claimed = db.session.execute(
        update(Verification)
        .where(Verification.id == verification_id, Verification.state == "queued")
        .values(state="running", started_at=now, heartbeat_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return db.session.get(Verification, verification_id) if claimed == 1 else None


def finish_verification(verification: Verification, state: str, error: str | None = None) -> None:
    verification.state = state
    verification.finished_at = utcnow()
    verification.error_message = error


def record_findings(verification: Verification, findings: Findings) -> list[int]:
    """Remember damaged objects and mark the points that need them `damaged`; returns the ids
    of the damaged points. A verification that decoded every object and found nothing clears
    what earlier verifications recorded (the damage was repaired, or its points pruned)."""
    repository_id = verification.repository_id
    verification.points_checked = findings.points_checked
    verification.objects_checked = findings.objects_checked
    verification.problems = list(findings.problems)
    if findings.complete and not findings.problems:
        db.session.execute(
            delete(DamagedObject).where(DamagedObject.repository_id == repository_id)
        )
        db.session.execute(
            update(RecoveryPoint)
            .where(RecoveryPoint.repository_id == repository_id)
            .values(damaged=False)
        )
    known = set(
        db.session.scalars(
            select(DamagedObject.object_id).where(DamagedObject.repository_id == repository_id)
        )
    )
    for _point, object_id, pack_id in findings.damaged:
        if object_id not in known:
            known.add(object_id)
            db.session.add(
                DamagedObject(
                    repository_id=repository_id,
                    object_id=object_id,
                    pack_id=pack_id,
                    verification_id=verification.id,
                )
            )
    damaged_engine_ids = {point for point, _, _ in findings.damaged} | set(
        findings.unreadable_points
    )
    damaged_ids = mark_damaged(repository_id, damaged_engine_ids)
    verification.damaged_points = damaged_ids
    verification.repository.last_verified_at = utcnow()
    return damaged_ids


def mark_damaged(repository_id: int, engine_ids: Iterable[str]) -> list[int]:
    engine_ids = list(engine_ids)
    if not engine_ids:
        return []
    points = db.session.scalars(
        select(RecoveryPoint).where(
            RecoveryPoint.repository_id == repository_id, RecoveryPoint.engine_id.in_(engine_ids)
        )
    ).all()
    for point in points:
        point.damaged = True
    return sorted(point.id for point in points)


def distrusted_objects(repository_id: int) -> list[str]:
    """Object ids (hex) a backup into this repository must store again instead of reusing."""
    return list(
        db.session.scalars(
            select(DamagedObject.object_id).where(DamagedObject.repository_id == repository_id)
        )
    )


def reconcile_points(repository_id: int, present: set[str]) -> dict[str, list[int]]:
    """Make the database agree with the repository: a point whose file is gone is `missing`
    (shown, never restorable); one that came back (a remount) is `available` again.
    `present` is every point id the repository holds.

    Conditional updates, not the ORM's: another agent's rotation may delete a row between
    this read and this write (two agents sharing a repository, found by bench/chaos.py), and a
    row gone meanwhile is simply not updated."""
    rows = db.session.execute(
        select(RecoveryPoint.id, RecoveryPoint.engine_id, RecoveryPoint.state).where(
            RecoveryPoint.repository_id == repository_id
        )
    ).all()
    changed: dict[str, list[int]] = {"missing": [], "available": []}
    for point_id, engine_id, state in rows:
        now = "available" if engine_id in present else "missing"
        if state != now:
            changed[now].append(point_id)
    for state, point_ids in changed.items():
        if point_ids:
            db.session.execute(
                update(RecoveryPoint)
                .where(RecoveryPoint.id.in_(point_ids))
                .values(state=state)
                .execution_options(synchronize_session="fetch")
            )
    db.session.commit()
    return changed


# ---- how the API shows it ------------------------------------------------------------------


def verification_view(verification: Verification) -> dict:
    server = verification.server
    return {
        "id": verification.id,
        "repository": verification.repository_id,
        "server": {"id": server.id, "name": server.name} if server else None,
        "trigger": verification.trigger,
        "readData": verification.read_data,
        "state": verification.state,
        "queuedAt": iso_utc(verification.queued_at),
        "startedAt": iso_utc(verification.started_at),
        "finishedAt": iso_utc(verification.finished_at),
        "pointsChecked": verification.points_checked,
        "objectsChecked": verification.objects_checked,
        "problems": list(verification.problems or []),
        "damagedPoints": list(verification.damaged_points or []),
        "errorMessage": verification.error_message,
        "requestedBy": (
            {"id": verification.requested_by.id, "email": verification.requested_by.email}
            if verification.requested_by
            else None
        ),
    }
