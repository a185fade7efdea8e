"""What an agent does with a run or a restore: claim it, run the engine, record the outcome.

State changes follow `app/services/run_lifecycle.py`; the lease is kept by `lease.py`. The
master key of encrypted jobs (`ZDM_MASTER_KEY`) is read by the engine itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket

from sqlalchemy import select

import config
from app.database import patiently
from app.extensions import db
from app.models import RecoveryPoint, Restore, Run
from app.services import dispatch, restore_policy
from app.services.run_lifecycle import (
    WORKER_LOST,
    change_state,
    claim,
    finish_run,
    note,
    refresh_job_status,
    renew_if_unfinished,
)
from app.services.verification import distrusted_objects
from app.timeutil import utcnow
from workers import engine
from workers.agent.lease import RunLease
from workers.agent.presence import key_fingerprint
from workers.agent.settings import agent_settings
from workers.agent.verification import reconcile_repository

log = logging.getLogger(__name__)


def _engine_call(operation, canceled: str, label: str):
    """(result, None) on success, or (None, (state, message)): an engine error's own
    sentence, or the cancel message; anything unexpected is logged with its traceback."""
    try:
        return operation(), None
    except engine.OperationCanceled:
        return None, ("canceled", canceled)
    except engine.EngineError as exc:
        return None, ("failed", str(exc))
    except Exception as exc:
        log.exception("%s failed", label)
        return None, ("failed", f"unexpected error: {exc}")


def run_backup(run_id: int) -> str:
    """Execute a queued run on this agent; returns the run's final state."""
    if not claim(Run, run_id):
        return "ignored"
    run = db.session.get(Run, run_id)
    job = run.job
    run.worker = socket.gethostname()
    finish = None
    settings = agent_settings()
    served = settings.source_of(job.partition.name) if settings else None
    if served is None:
        finish = ("failed", f"partition {job.partition.name} is not served by this agent")
    note(run, f"started on {run.worker}: {job.mode} backup of {job.partition.name}")
    refresh_job_status(job)
    db.session.commit()
    log.info("%s backup of %s started", job.mode, job.partition.name)
    if finish is None:
        finish = _back_up(run, job, served.path)
    if finish is not _DECLARED_LOST and _patiently(
        lambda: _finish(run, finish), "recording the run's outcome"
    ):
        _log_outcome("backup", *finish)
    else:  # the sweeper declared this run lost meanwhile; its outcome stands
        log.warning("run %s ended %s after it was declared lost", run.id, finish[0])
    dispatch.send(dispatch.RUN_FINISHED_TASK, dispatch.CONTROL_QUEUE, {"run_id": run.id})
    return run.state


# `_back_up`'s answer when the run was declared lost before its point could be recorded
_DECLARED_LOST = ("failed", WORKER_LOST)


def _patiently(step, what: str):
    """A step that records what a finished engine call did: tried again while the database is
    unreachable (an outage, a cut link), for `ZDM_RECORD_PATIENCE_SECONDS`. The run's lease
    is renewed meanwhile by its thread, once the database answers again."""
    return patiently(step, what, config.record_patience_seconds(), log)


def _finish(run: Run, finish: tuple[str, str | None]) -> bool:
    """Give the run its outcome unless it was declared lost meanwhile; commits."""
    changed = change_state(run, ("running", "canceling"), finish[0])
    if changed:
        finish_run(run, *finish)
    else:
        db.session.refresh(run)
        # tried again after a commit whose answer was lost: it is already done
        changed = (run.state, run.error_message) == finish and run.finished_at is not None
    db.session.commit()
    return changed


_BACKUP_COUNTS = {"read": "bytes_read", "written": "bytes_written"}
_RESTORE_COUNTS = {"done": "bytes_restored"}


def _average_speed(size: int, seconds: float) -> float:
    """What a finished run or restore shows as its speed: bytes per second over the engine's
    whole work (the engine's own duration)."""
    return size / seconds if seconds > 0 else 0.0


def _log_outcome(what: str, state: str, error: str | None) -> None:
    """One line per outcome; the log context names the job and the run."""
    if state == "failed":
        log.warning("%s failed: %s", what, error)
    else:
        log.info("%s ended %s%s", what, state, f": {error}" if error else "")


def _back_up(run: Run, job, source: str) -> tuple[str, str | None]:
    # The lease is kept for the whole run: rotation may wait long for the repository's lock.
    with RunLease(Run.__table__, run.id, _BACKUP_COUNTS) as lease:
        result, failure = _engine_call(
            lambda: engine.backup(
                job.repository.path,
                job.engine_job,
                source,
                mode=job.mode,
                compression=job.compression,
                encryption="aes256" if job.encryption == "aes256" else None,
                rate_limit_mbps=job.network_limit,
                exclude_dirs=job.exclude_dirs or (),
                progress=lease.progress,
                should_cancel=lease.should_cancel,
                # objects a verification found damaged: stored again, never reused
                distrust=distrusted_objects(job.repository_id),
                # the database, not the repository, says which point to build on
                **_recorded_parent(job),
            ),
            canceled="canceled by stop; no recovery point was written",
            label=f"backup of run {run.id}",
        )
        if failure:
            return failure
        lease.hold()
        if not _patiently(lambda: _record_point(run, job, result), "recording the recovery point"):
            return _drop_unrecorded_point(run, job, result.point_id)
        _patiently(lambda: _apply_rotation(run, job), "rotation")
    return "success", None


def _record_point(run: Run, job, result) -> bool:
    """Record the new point and the run's totals, and commit: nothing of this session stays
    open (on SQLite, a write lock) while rotation waits for the repository. False if the run
    was declared lost meanwhile (the database was unreachable longer than its lease): its
    retry makes a point of its own, so this one must not be recorded."""
    if not renew_if_unfinished(Run, run.id):
        db.session.rollback()
        return False
    recorded = db.session.scalar(
        select(RecoveryPoint.id).where(
            RecoveryPoint.run_id == run.id, RecoveryPoint.engine_id == result.point_id
        )
    )
    if recorded is not None:  # tried again after a commit whose answer was lost
        db.session.commit()
        return True
    db.session.refresh(run)
    run.mode = result.mode
    run.bytes_read, run.bytes_written = result.bytes_read, result.bytes_written
    run.bytes_total, run.percent = result.source_size, 100.0
    run.speed = _average_speed(result.source_size, result.duration_seconds)
    db.session.add(
        RecoveryPoint(
            engine_id=result.point_id,
            job_id=job.id,
            run_id=run.id,
            repository_id=job.repository_id,
            server_id=job.server_id,
            partition_name=job.partition.name,
            partition_kind=job.partition.kind,
            engine_job=job.engine_job,
            mode=result.mode,
            source_size=result.source_size,
            stored_size=result.stored_size,
            compression=job.compression,
            encrypted=job.encryption == "aes256",
            digest=result.digest,
            # the key it was made with, by its fingerprint: a restore needs that key
            key_fingerprint=key_fingerprint() if job.encryption == "aes256" else None,
        )
    )
    note(
        run, f"recovery point {result.point_id} ({result.mode}, {result.stored_size} bytes stored)"
    )
    if result.healed_blocks:
        note(run, f"{result.healed_blocks} damaged blocks stored again instead of reused")
    db.session.commit()
    return True


def _drop_unrecorded_point(run: Run, job, point_id: str) -> tuple[str, str | None]:
    """The backup finished, but its run had been declared lost while the database was out of
    reach: its point is removed from the repository (nothing refers to it; the retry makes
    its own), so no point is ever on disk without its record."""
    log.warning("run %s was declared lost while its backup finished; removing point %s",
                run.id, point_id)  # fmt: skip
    try:
        report = engine.prune(job.repository.path, job.engine_job, 0, order=[point_id])
        outcome = f"its point {point_id} was removed" if report.removed_points else (
            f"its point {point_id} could not be removed: {'; '.join(report.problems)}")  # fmt: skip
    except engine.EngineError as exc:
        outcome = f"its point {point_id} could not be removed: {exc}"
    _patiently(lambda: _note_and_commit(run, f"the backup finished after the run was declared "
                                             f"lost; {outcome}"), "noting the removed point")  # fmt: skip
    return _DECLARED_LOST


def _note_and_commit(run: Run, message: str) -> None:
    db.session.refresh(run)
    note(run, message)
    db.session.commit()


def _recorded_points(job) -> list[RecoveryPoint]:
    """The job's points as the database recorded them, oldest first (ids are never reused,
    so their order is the order the runs made them, whatever any clock said)."""
    return list(
        db.session.scalars(
            select(RecoveryPoint)
            .where(RecoveryPoint.job_id == job.id, RecoveryPoint.engine_job == job.engine_job)
            .order_by(RecoveryPoint.id)
        )
    )


def _recorded_parent(job) -> dict:
    """The point an incremental builds on: the job's newest recorded point that is still
    there, with its digest; none means a full. A point with damaged objects is still a parent:
    the backup is given those objects' ids and stores their blocks again (SPEC "Trust")."""
    usable = [point for point in _recorded_points(job) if point.state == "available"]
    if not usable:
        return {"parent": None}
    return {"parent": usable[-1].engine_id, "parent_digest": usable[-1].digest}


def _apply_rotation(run: Run, job) -> None:
    """At most `rotation` points of the job remain; data no remaining point needs goes. The
    database loses exactly the points the engine reports removed, whatever else happened."""
    repository, engine_job, keep = job.repository.path, job.engine_job, job.rotation
    order = [point.engine_id for point in _recorded_points(job)]
    db.session.commit()  # no transaction stays open while prune waits for the repository
    try:
        report = engine.prune(repository, engine_job, keep, order=order)
    except engine.EngineError as exc:  # before anything was removed (locked, unreadable, ...)
        note(run, f"rotation did not run: {exc}")
        db.session.commit()
        return
    _forget_points(job.repository_id, engine_job, report.removed_points)
    if report.removed_points:
        note(run, f"rotation removed {len(report.removed_points)} old recovery points")
    if leftovers := _removed_before(order, keep, report):
        _forget_points(job.repository_id, engine_job, leftovers)
        note(run, f"rotation forgot {len(leftovers)} points an interrupted rotation had already "
                  f"removed ({', '.join(leftovers)})")  # fmt: skip
    if report.unknown:
        note(
            run,
            f"rotation left {len(report.unknown)} points alone that the database does not know "
            f"({', '.join(report.unknown)})",
        )
    for problem in report.problems:
        note(run, f"rotation: {problem}")
    db.session.commit()
    reconcile_repository(job.repository)  # the database agrees with what prune left


def _removed_before(order: list[str], keep: int, report) -> list[str]:
    """Recorded points whose files are gone and that this rotation would have removed: older
    than every point it kept. An agent killed after prune deleted their files and before the
    database forgot them left them recorded (found by bench/chaos.py); they are forgotten,
    not shown `missing`. A gone point inside the kept window is a real loss: reconciliation
    shows it `missing`."""
    seen = {*report.kept, *report.kept_in_use, *report.removed_points}
    if keep and len(report.kept) < keep:
        return []
    oldest_kept = min((order.index(p) for p in report.kept if p in order), default=len(order))
    return [p for p in order[:oldest_kept] if p not in seen]


def _forget_points(repository_id: int, engine_job: str, point_ids: list[str]) -> None:
    if point_ids:
        db.session.query(RecoveryPoint).filter(
            RecoveryPoint.repository_id == repository_id,
            RecoveryPoint.engine_job == engine_job,
            RecoveryPoint.engine_id.in_(point_ids),
        ).delete(synchronize_session=False)


def run_restore(restore_id: int) -> str:
    """Execute a queued restore on this agent, once the restore policy allows its target on
    this machine; a refused restore ends `failed` with the rule's sentence, having written
    nothing. Returns the restore's final state."""
    if not claim(Restore, restore_id):
        return "ignored"
    restore = db.session.get(Restore, restore_id)
    point = restore.recovery_point
    if point is None:
        state, error = "failed", "the recovery point no longer exists"
    elif (refusal := _key_refusal(point)) is not None:
        state, error = "failed", refusal
    else:
        destination, error = _restore_destination(restore)
        if destination is None:
            state = "failed"
        else:
            where = restore.target
            if destination.path != restore.target:
                where += f" ({destination.path})"
            note(restore, f"restoring point {point.engine_id} to {where}")
            restore.bytes_total = point.source_size  # known from the start
            db.session.commit()
            log.info("restore of point %s to %s started", point.engine_id, where)
            state, error = _restore(restore, point, destination.path)
    _log_outcome("restore", state, error)
    restore.state, restore.finished_at = state, utcnow()
    if error:
        restore.error_message = error
        note(restore, error)
    db.session.commit()
    return state


def _key_refusal(point: RecoveryPoint) -> str | None:
    """Why this agent cannot decrypt `point` (it has no master key, or another one than the
    point was made with), or None. A point made before fingerprints were recorded is tried."""
    if not point.encrypted:
        return None
    mine = key_fingerprint()
    if mine is None:
        return (
            f"recovery point {point.id} is encrypted and this agent has no master key "
            f"(ZDM_MASTER_KEY); nothing was written"
        )
    if point.key_fingerprint is not None and point.key_fingerprint != mine:
        return (
            f"recovery point {point.id} was encrypted with the master key {point.key_fingerprint} "
            f"and this agent holds another ({mine}); nothing was written"
        )
    return None


def _restore_destination(restore: Restore) -> tuple[restore_policy.Destination | None, str | None]:
    """Where the engine may write for `restore` on this machine, or the refusal's sentence."""
    roots = config.restore_roots()  # this agent's own, as set in its environment
    for root in roots:  # the default root exists from the first restore on
        with contextlib.suppress(OSError):
            os.makedirs(root, mode=0o700, exist_ok=True)
    settings = agent_settings()
    served = [
        restore_policy.ServedPartition(p.name, p.path)
        for p in (settings.partitions if settings else ())
    ]
    requester = restore.requested_by
    role = requester.role if requester is not None and requester.disabled_at is None else None
    place = restore_policy.service_place(restore.server, roots, served, restore.id)
    try:
        return restore_policy.check_on_agent(restore.target, restore.overwrite, role, place), None
    except restore_policy.RestoreRefused as refusal:
        return None, refusal.sentence()


def _restore(restore: Restore, point: RecoveryPoint, target: str) -> tuple[str, str | None]:
    with RunLease(Restore.__table__, restore.id, _RESTORE_COUNTS) as lease:
        result, failure = _engine_call(
            lambda: engine.restore(
                point.repository.path,
                point.engine_id,
                target,
                progress=lease.progress,
                should_cancel=lease.should_cancel,
                # the database's word on what was made, not the point file's
                expected_digest=point.digest,
                require_encrypted=point.encrypted,
            ),
            canceled="restore canceled",
            label=f"restore {restore.id}",
        )
        lease.hold()
    if failure:
        return failure
    db.session.refresh(restore)
    restore.bytes_restored, restore.percent = result.bytes_restored, 100.0
    restore.bytes_total = result.bytes_restored  # the point's size
    restore.speed = _average_speed(result.bytes_restored, result.duration_seconds)
    return "success", None


def purge_job_points(repository: str, engine_job: str) -> int:
    report = engine.prune(repository, engine_job, 0)
    return len(report.removed_points)
