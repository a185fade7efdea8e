"""Celery tasks: thin, named explicitly, idempotent (every one re-reads the database)."""

from celery.utils.log import get_task_logger

from workers.celery_app import celery_app

log = get_task_logger(__name__)


@celery_app.task(name="zdm.backup.run")
def backup_run(run_id: int, job_id: int | None = None, job_name: str | None = None) -> str:
    """Run a backup on the agent (job id and name are there for Flower's task list)."""
    from workers.runner import run_backup

    return run_backup(run_id)


@celery_app.task(name="zdm.restore.run")
def restore_run(restore_id: int, recovery_point_id: int | None = None) -> str:
    from workers.runner import run_restore

    return run_restore(restore_id)


@celery_app.task(name="zdm.repository.purge")
def purge(repository: str, engine_job: str, job_name: str | None = None) -> int:
    from workers.runner import purge_job_points

    return purge_job_points(repository, engine_job)


@celery_app.task(name="zdm.repository.verify")
def verify_repository(verification_id: int, repository_id: int | None = None) -> str:
    """Verify a repository on an agent that uses it (repository id for Flower's list)."""
    from workers.verification import run_verification

    return run_verification(verification_id)


@celery_app.task(name="zdm.control.verification_finished")
def verification_finished(verification_id: int) -> list[str]:
    """Mail the jobs whose recovery points a verification found damaged."""
    from workers.mail import notify_verification_finished

    return notify_verification_finished(verification_id)


@celery_app.task(name="zdm.control.run_finished")
def run_finished(run_id: int) -> str | None:
    """Mail, when the run failed or succeeded after a failure."""
    from workers.mail import notify_run_finished

    return notify_run_finished(run_id)


@celery_app.task(name="zdm.control.sweep")
def sweep() -> dict:
    from workers.housekeeping import sweep as sweep_runs

    return sweep_runs()
