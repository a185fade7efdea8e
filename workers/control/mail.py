"""Mail to a job's `mailEvent` addresses: when a run fails, and when a run succeeds after a
failure. SMTP server from `ZDM_SMTP_URL` (`smtp://host:port`, `smtp://user:pass@host:port`,
`smtps://...` for TLS from the start, `?starttls=1` to upgrade)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlparse

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models import BackupJob, RecoveryPoint, Run, Verification
from app.timeutil import iso_utc


def mail_reason(run: Run) -> str | None:
    """'failed', 'recovered' or None (no mail)."""
    if run.state == "failed":
        return "failed"
    if run.state != "success":
        return None
    previous = db.session.scalar(
        select(Run)
        .where(
            Run.job_id == run.job_id,
            Run.id != run.id,
            Run.state.in_(("success", "failed")),
            Run.finished_at <= run.finished_at,
        )
        .order_by(Run.finished_at.desc(), Run.id.desc())
        .limit(1)
    )
    return "recovered" if previous is not None and previous.state == "failed" else None


def compose(run: Run, reason: str, sender: str) -> EmailMessage:
    job = run.job
    message = EmailMessage()
    verb = "FAILED" if reason == "failed" else "succeeded again"
    message["Subject"] = (
        f"[ZDM] backup {job.name} ({job.partition.name} on {job.server.name}) {verb}"
    )
    message["From"] = sender
    message["To"] = ", ".join(a.strip() for a in job.mail_event.split(","))
    lines = [
        f"Job: {job.name} (id {job.id})",
        f"Server: {job.server.name}, partition {job.partition.name}",
        f"Run: {run.id} ({run.trigger}), scheduled for {iso_utc(run.scheduled_for)}",
        f"State: {run.state}",
        f"Started: {iso_utc(run.started_at)}, finished: {iso_utc(run.finished_at)}",
    ]
    if run.error_message:
        lines.append(f"Error: {run.error_message}")
    message.set_content("\n".join(lines) + "\n")
    return message


def send_mail(message: EmailMessage, url: str) -> None:
    parts = urlparse(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(f"ZDM_SMTP_URL must start with smtp:// or smtps://, not {url!r}")
    client_class = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    port = parts.port or (465 if parts.scheme == "smtps" else 25)
    with client_class(parts.hostname or "127.0.0.1", port, timeout=30) as client:
        if parse_qs(parts.query).get("starttls") == ["1"]:
            client.starttls()
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        client.send_message(message)


def notify_run_finished(run_id: int) -> str | None:
    run = db.session.get(Run, run_id)
    if run is None or run.job is None or not run.job.mail_event:
        return None
    reason = mail_reason(run)
    url = current_app.config["ZDM_SMTP_URL"]
    if reason is None or not url:
        return None
    send_mail(compose(run, reason, current_app.config["ZDM_MAIL_FROM"]), url)
    return reason


def compose_damage(job: BackupJob, points: list[RecoveryPoint], verification, sender: str):
    message = EmailMessage()
    message["Subject"] = (
        f"[ZDM] backup {job.name} ({job.partition.name} on {job.server.name}): "
        f"{len(points)} recovery points DAMAGED"
    )
    message["From"] = sender
    message["To"] = ", ".join(a.strip() for a in job.mail_event.split(","))
    lines = [
        f"Job: {job.name} (id {job.id})",
        f"Repository: {verification.repository.path} (id {verification.repository_id})",
        f"Verification: {verification.id}, finished {iso_utc(verification.finished_at)}",
        "Damaged recovery points (not restorable as they are): "
        + ", ".join(f"{p.id} ({iso_utc(p.created_at)})" for p in points),
        "The next run of an incremental job stores the damaged blocks again.",
        "",
        *verification.problems[:20],
    ]
    message.set_content("\n".join(lines) + "\n")
    return message


def notify_verification_finished(verification_id: int) -> list[str]:
    """One mail per affected job with a `mailEvent`; returns the addresses mailed."""
    verification = db.session.get(Verification, verification_id)
    url = current_app.config["ZDM_SMTP_URL"]
    if verification is None or not verification.damaged_points or not url:
        return []
    points = db.session.scalars(
        select(RecoveryPoint)
        .where(RecoveryPoint.id.in_(verification.damaged_points))
        .order_by(RecoveryPoint.id)
    ).all()
    by_job: dict[int, list[RecoveryPoint]] = {}
    for point in points:
        if point.job_id is not None:
            by_job.setdefault(point.job_id, []).append(point)
    sent = []
    for job_id, job_points in by_job.items():
        job = db.session.get(BackupJob, job_id)
        if job is None or not job.mail_event:
            continue
        message = compose_damage(job, job_points, verification, current_app.config["ZDM_MAIL_FROM"])
        send_mail(message, url)
        sent.append(message["To"])
    return sent
