"""What an agent does to check a repository: verify it with the engine, record what was
found, and reconcile the database with the points the repository really holds."""

from __future__ import annotations

import logging

from sqlalchemy import or_, select

from app.extensions import db
from app.models import BackupJob, RecoveryPoint, Repository
from app.services import dispatch
from app.services.verification import (
    Findings,
    claim_verification,
    finish_verification,
    reconcile_points,
    record_findings,
)
from workers import engine

log = logging.getLogger(__name__)


def run_verification(verification_id: int) -> str:
    verification = claim_verification(verification_id)
    if verification is None:
        return "ignored"
    repository = verification.repository
    try:
        report = engine.verify(
            repository.path,
            read_data=float(verification.read_data),
            # the master key of this agent (ZDM_MASTER_KEY), for encrypted points
            expected=recorded_digests(repository.id),
        )
    except engine.EngineError as error:
        finish_verification(verification, "failed", str(error))
        db.session.commit()
        return verification.state
    findings = Findings(
        points_checked=report.points_checked,
        objects_checked=report.objects_checked,
        problems=list(report.problems),
        damaged=list(report.damaged),
        unreadable_points=list(report.unreadable_points),
        complete=verification.read_data >= 100,
    )
    damaged = record_findings(verification, findings)
    if report.problems:
        finish_verification(
            verification,
            "failed",
            f"{len(report.problems)} problems found; damaged recovery points: {damaged or 'none'}",
        )
    else:
        finish_verification(verification, "success")
    db.session.commit()
    reconcile_repository(repository)
    if damaged:
        dispatch.send(
            dispatch.VERIFICATION_FINISHED_TASK,
            dispatch.CONTROL_QUEUE,
            {"verification_id": verification.id},
        )
    return verification.state


def recorded_digests(repository_id: int) -> dict[str, str]:
    """The digest the database recorded for each point of the repository."""
    rows = db.session.execute(
        select(RecoveryPoint.engine_id, RecoveryPoint.digest).where(
            RecoveryPoint.repository_id == repository_id, RecoveryPoint.digest.is_not(None)
        )
    )
    return {engine_id: digest for engine_id, digest in rows}


def reconcile_repository(repository: Repository) -> dict[str, list[int]] | None:
    """Mark the repository's points `missing` or `available` by what it really holds; None
    when the repository cannot be read here (then nothing is changed)."""
    try:
        present = engine.point_ids(repository.path)
    except engine.EngineError as error:
        log.warning("repository %s not reconciled: %s", repository.path, error)
        return None
    changed = reconcile_points(repository.id, present)
    if changed["missing"]:
        log.warning(
            "repository %s: recovery points %s are gone from disk (now missing)",
            repository.path,
            changed["missing"],
        )
    return changed


def repositories_of_server(server_id: int) -> list[Repository]:
    """The repositories this agent writes or holds points in."""
    return list(
        db.session.scalars(
            select(Repository)
            .where(
                or_(
                    Repository.id.in_(
                        select(BackupJob.repository_id).where(
                            BackupJob.server_id == server_id, BackupJob.deleted_at.is_(None)
                        )
                    ),
                    Repository.id.in_(
                        select(RecoveryPoint.repository_id).where(
                            RecoveryPoint.server_id == server_id
                        )
                    ),
                )
            )
            .order_by(Repository.id)
        )
    )


def reconcile_server(server_id: int) -> None:
    """On agent start: every repository of this server agrees with the database."""
    for repository in repositories_of_server(server_id):
        reconcile_repository(repository)
