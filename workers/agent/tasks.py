"""The agent's Celery tasks: thin, named explicitly, idempotent (each re-reads the database).
Sent to `zdm.server.<server>` by name (`app/services/dispatch.py`)."""

from celery import shared_task

from workers.agent.runner import purge_job_points, run_backup, run_restore
from workers.agent.verification import run_verification


@shared_task(name="zdm.backup.run")
def backup_run(run_id: int, job_id: int | None = None, job_name: str | None = None) -> str:
    """Run a backup on the agent (job id and name are there for Flower's task list)."""
    return run_backup(run_id)


@shared_task(name="zdm.restore.run")
def restore_run(restore_id: int, recovery_point_id: int | None = None) -> str:
    return run_restore(restore_id)


@shared_task(name="zdm.repository.purge")
def purge(repository: str, engine_job: str, job_name: str | None = None) -> int:
    return purge_job_points(repository, engine_job)


@shared_task(name="zdm.repository.verify")
def verify_repository(verification_id: int, repository_id: int | None = None) -> str:
    """Verify a repository on an agent that uses it (repository id for Flower's list)."""
    return run_verification(verification_id)
