"""The control worker's Celery tasks (queue `zdm.control`): thin, named explicitly,
idempotent (each re-reads the database)."""

from celery import shared_task
from sqlalchemy import select

from app.database import unreachable
from app.extensions import db
from workers.control.mail import notify_run_finished, notify_verification_finished
from workers.control.sweeps import LeaseWatch
from workers.control.sweeps import sweep as sweep_runs


@shared_task(name="zdm.control.verification_finished")
def verification_finished(verification_id: int) -> list[str]:
    """Mail the jobs whose recovery points a verification found damaged."""
    return notify_verification_finished(verification_id)


@shared_task(name="zdm.control.run_finished")
def run_finished(run_id: int) -> str | None:
    """Mail, when the run failed or succeeded after a failure."""
    return notify_run_finished(run_id)


_lease_watch = LeaseWatch()  # per worker process


@shared_task(name="zdm.control.sweep")
def sweep() -> dict:
    try:
        db.session.execute(select(1))  # reach the database before judging anything
        return sweep_runs(judge_leases=_lease_watch.reached())
    except Exception as error:
        if unreachable(error):
            _lease_watch.unreachable()
        raise
