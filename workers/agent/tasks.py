"""The agent's Celery tasks: thin, named explicitly, idempotent (each re-reads the database).
Sent to `zdm.server.<server>` by name (`app/services/dispatch.py`).

What Flower shows is the run's outcome (docs/decisions.md, issue 10, worker side): a run
or restore that ended `failed` raises `RunFailed` with the run's error (FAILURE, its
exception text the error); one that ended `canceled` is announced `task-revoked` and ends
without a result (REVOKED); `success` (and `ignored`, a redelivered message of a run already
done) return the state (SUCCESS). The outcome is recorded in the database before any of
this, and a task that raises is acknowledged like one that returns (acks late,
`task_acks_on_failure_or_timeout`): nothing is redelivered or retried because of it. A
verification is shown the same way: FAILURE with its error when it found problems.
"""

import logging

from celery import shared_task
from celery.exceptions import Ignore
from celery.signals import task_postrun, task_prerun

from app.extensions import db
from app.log_format import log_context
from app.models import Restore, Run, Verification
from workers.agent.runner import purge_job_points, run_backup, run_restore
from workers.agent.verification import run_verification

log = logging.getLogger(__name__)


class RunFailed(Exception):
    """A run or restore ended `failed`; the message is its error, as the API shows it."""


def _outcome(task, model, row_id: int, state: str) -> str:
    if state == "failed":
        row = db.session.get(model, row_id)
        raise RunFailed((row.error_message if row is not None else None) or "failed")
    if state == "canceled":
        try:  # a monitoring event: the broker failing here must not fail the task
            task.send_event("task-revoked", terminated=False, signum=None, expired=False)
        except Exception as exc:
            log.warning("could not tell the monitors that the task was revoked: %s", exc)
        raise Ignore()
    return state


# `throws`: expected outcomes, logged by the worker in one line without a traceback;
# `max_retries=0`: Celery never runs a task again on its own.
_RUN_TASK = {"bind": True, "throws": (RunFailed,), "max_retries": 0, "autoretry_for": ()}


@shared_task(name="zdm.backup.run", **_RUN_TASK)
def backup_run(self, run_id: int, job_id: int | None = None, job_name: str | None = None) -> str:
    """Run a backup on the agent (job id and name are there for Flower's task list)."""
    return _outcome(self, Run, run_id, run_backup(run_id))


@shared_task(name="zdm.restore.run", **_RUN_TASK)
def restore_run(
    self,
    restore_id: int,
    recovery_point_id: int | None = None,
    job_id: int | None = None,
    job_name: str | None = None,
) -> str:
    """Run a restore on the agent (point, job id and name are there for Flower's task list)."""
    return _outcome(self, Restore, restore_id, run_restore(restore_id))


# ---- every line logged while a run or restore is executed names its job and run ------------

_RUN_CONTEXTS: dict[str, object] = {}  # task id -> the open log context


@task_prerun.connect
def _bind_log_context(task_id=None, task=None, kwargs=None, **_ignored):
    if task is None or task.name not in (backup_run.name, restore_run.name):
        return
    kwargs = kwargs or {}
    context = log_context(
        job=kwargs.get("job_id"),
        jobName=kwargs.get("job_name"),
        run=kwargs.get("run_id"),
        restore=kwargs.get("restore_id"),
    )
    context.__enter__()
    _RUN_CONTEXTS[task_id] = context


@task_postrun.connect
def _unbind_log_context(task_id=None, **_ignored):
    context = _RUN_CONTEXTS.pop(task_id, None)
    if context is not None:
        context.__exit__(None, None, None)


@shared_task(name="zdm.repository.purge")
def purge(repository: str, engine_job: str, job_name: str | None = None) -> int:
    return purge_job_points(repository, engine_job)


@shared_task(name="zdm.repository.verify", **_RUN_TASK)
def verify_repository(self, verification_id: int, repository_id: int | None = None) -> str:
    """Verify a repository on an agent that uses it (repository id for Flower's list). A
    verification that found problems, or could not run, shows as FAILURE with its error."""
    return _outcome(self, Verification, verification_id, run_verification(verification_id))
