"""A backup job after registration: how it is shown, changed and deleted."""

from __future__ import annotations

import functools

from sqlalchemy import Select, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from app.errors import FieldErrors
from app.extensions import db
from app.i18n import t
from app.models import BackupJob, Center, Partition, Repository, Run, Server, User
from app.services import run_commands, run_views
from app.services.job_health import health_condition, health_of, last_success_of
from app.services.lookup import as_id, by_id_or_name
from app.services.pagination import page_of_ids
from app.services.schedule import Schedule, describe, next_fire_time
from app.timeutil import iso_utc, utcnow


def job_view(job: BackupJob) -> dict:
    """One job as GET /backups shows it (BackupJobSchema)."""
    return job_views([job.id])[0]


def job_views(ids: list[int]) -> list[dict]:
    """The jobs `ids` as GET /backups shows them, in that order, read in one statement:
    the job, what it shows of its server, center, partition, repository and users, and the
    start and end of its latest started run. Plain rows, no ORM objects: a page of 20 jobs
    with six related rows each costs more to build as objects than to read."""
    if not ids:
        return []
    by_id = {row.id: row for row in db.session.execute(_jobs_shown(), {"ids": ids})}
    now = utcnow()
    return [_shown(by_id[i], now) for i in ids if i in by_id]


def _shown(row, now) -> dict:
    schedule = Schedule(row.schedule_type, row.schedule_expr, row.timezone)
    return {
        "center": {"id": row.center_id, "name": row.center_name},
        "system": {"id": row.server_id, "name": row.server_name},
        "job": {
            "info": {
                "id": row.id,
                "name": row.name,
                "mode": row.mode,
                "partition": row.partition_name,
                "schedule": {
                    "type": row.schedule_type,
                    "basic": row.schedule_expr,
                    "advanced": describe(schedule),
                    "timezone": row.timezone,
                    "nextRunAt": iso_utc(row.next_run_at),
                },
                "status": {
                    "current": row.status,
                    "health": health_of(
                        schedule, row.active, row.created_at, row.last_success_at, now
                    ),
                    "lastSuccessAt": iso_utc(row.last_success_at),
                    "time": run_views.run_times(row.run_started_at, row.run_finished_at),
                },
            },
            "lastUpdated": iso_utc(row.updated_at),
        },
        "repository": {
            "id": row.repository_id,
            "type": row.repository_type,
            "path": row.repository_path,
        },
        "options": {
            "autoStart": "yes" if row.auto_start else "no",
            "rotation": row.rotation,
            "compression": row.compression,
            "encryption": row.encryption,
            "excludeDir": list(row.exclude_dirs or []),
            "mailEvent": row.mail_event,
            "networkLimit": row.network_limit,
            "description": row.description,
            "user": {"id": row.user_id, "name": row.user_email},
        },
        "createdBy": (
            {"id": row.created_by_id, "email": row.created_by_email}
            if row.created_by_id is not None
            else None
        ),
    }


@functools.cache
def _jobs_shown() -> Select:
    """The statement of `job_views`, built once (building it costs more than running it)."""
    job, server, center, partition = BackupJob, Server, Center, Partition
    repository, user, created_by = Repository, aliased(User), aliased(User)
    latest_run = (
        select(Run.id)
        .where(Run.job_id == job.id, Run.started_at.is_not(None))
        .order_by(Run.started_at.desc(), Run.id.desc())
        .limit(1)
        .correlate(job)
        .scalar_subquery()
    )
    columns = [
        job.id, job.name, job.mode, job.schedule_type, job.schedule_expr, job.timezone,
        job.next_run_at, job.status, job.updated_at, job.auto_start, job.rotation,
        job.compression, job.encryption, job.exclude_dirs, job.mail_event, job.network_limit,
        job.description, job.server_id, job.repository_id, job.user_id, job.created_by_id,
        job.active, job.created_at,
    ]  # fmt: skip
    return (
        select(
            *columns,
            server.name.label("server_name"),
            center.id.label("center_id"),
            center.name.label("center_name"),
            partition.name.label("partition_name"),
            repository.type.label("repository_type"),
            repository.path.label("repository_path"),
            user.email.label("user_email"),
            created_by.email.label("created_by_email"),
            Run.started_at.label("run_started_at"),
            Run.finished_at.label("run_finished_at"),
            last_success_of(job).label("last_success_at"),
        )
        .join(server, server.id == job.server_id)
        .join(center, center.id == server.center_id)
        .join(partition, partition.id == job.partition_id)
        .join(repository, repository.id == job.repository_id)
        .join(user, user.id == job.user_id)
        .outerjoin(created_by, created_by.id == job.created_by_id)
        .outerjoin(Run, Run.id == latest_run)
        .where(job.id.in_(bindparam("ids", expanding=True)))
    )


def list_jobs(args: dict) -> tuple[list[dict], dict]:
    """GET /backups: a page of live jobs in id order, and its pagination block."""
    page = page_of_ids(BackupJob.id, job_filters(args), args, ("backups", *_filter_key(args)))
    return job_views(page.ids), page.pagination


def job_filters(args: dict) -> list:
    """GET /backups' filters as conditions on backup_jobs' own columns. Center, server and
    partition (names or ids) become the server or partition ids they name, selected in
    the same statement: no join of the jobs with other tables, for the page or the count."""
    conditions = [BackupJob.deleted_at.is_(None)]
    if "partition" in args:
        named = (
            select(Partition.id).join(Partition.server).where(Partition.name == args["partition"])
        )
        conditions.append(_one_of(BackupJob.partition_id, _on_named_servers(named, args), args))
    elif "server" in args or "center" in args:
        servers = _on_named_servers(select(Server.id), args)
        conditions.append(_one_of(BackupJob.server_id, servers, args))
    if "jobName" in args:
        conditions.append(BackupJob.name == args["jobName"])
    if "mode" in args:
        conditions.append(BackupJob.mode == args["mode"])
    if "status" in args:
        conditions.append(BackupJob.status == args["status"])
    if "repositoryID" in args:
        conditions.append(BackupJob.repository_id == args["repositoryID"])
    if "health" in args:
        conditions.append(health_condition(args["health"], utcnow()))
    return conditions


def _one_of(column, ids: Select, args: dict):
    """`column IN (ids)`; `column = (ids)` when a server is named by its (unique) name, so
    the database walks that one server's index in id order instead of all it matches."""
    if "server" in args and as_id(args["server"]) is None:
        return column == ids.scalar_subquery()
    return column.in_(ids)


def _on_named_servers(ids: Select, args: dict) -> Select:
    """`ids` (selected with servers) limited to the `server` and `center` filters."""
    if "server" in args:
        ids = ids.where(by_id_or_name(Server, args["server"]))
    if "center" in args:
        ids = ids.join(Server.center).where(by_id_or_name(Center, args["center"]))
    return ids


_PAGING = ("page", "limit", "after")


def _filter_key(args: dict) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in args.items() if k not in _PAGING))


# API field -> (model attribute, how the API shows the stored value)
_UPDATABLE = {
    "jobName": "name",
    "rotation": "rotation",
    "compression": "compression",
    "encryption": "encryption",
    "excludeDir": "exclude_dirs",
    "mailEvent": "mail_event",
    "networkLimit": "network_limit",
    "description": "description",
}


def update_job(job: BackupJob, changes: dict) -> list[dict]:
    """Apply a PUT; returns `updatedFields` (only fields whose value really changed).

    A schedule change is honoured from the next fire time: `next_run_at` is recomputed
    here, and beat reads it from the database on its next tick.
    """
    if changes.get("excludeDir") and job.partition.kind == "block":
        raise FieldErrors({"excludeDir": [t("exclude_dir_on_block", partition=job.partition.name)]})
    updated = []
    for field, attribute in _UPDATABLE.items():
        if field in changes and getattr(job, attribute) != changes[field]:
            updated.append(
                {"field": field, "previous": getattr(job, attribute), "new": changes[field]}
            )
            setattr(job, attribute, changes[field])
    if "schedule" in changes:
        updated.extend(_change_schedule(job, changes["schedule"]))
    if updated:
        job.updated_at = utcnow()
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise FieldErrors(
            {
                "jobName": [
                    t(
                        "job_exists",
                        server=job.server.name,
                        partition=job.partition.name,
                        name=changes["jobName"],
                    )
                ]
            }
        ) from None
    return updated


def _change_schedule(job: BackupJob, schedule: Schedule) -> list[dict]:
    before = {"type": job.schedule_type, "description": job.schedule_expr, "timezone": job.timezone}
    after = {
        "type": schedule.type,
        "description": schedule.expression,
        "timezone": schedule.timezone,
    }
    if before == after:
        return []
    job.schedule_type, job.schedule_expr, job.timezone = (
        schedule.type,
        schedule.expression,
        schedule.timezone,
    )
    if job.active or job.status == "completed":  # a stopped job stays stopped
        job.active = True
        if job.status == "completed":
            job.status = "scheduled"
        job.next_run_at = next_fire_time(schedule, utcnow())
    return [{"field": "schedule", "previous": before, "new": after}]


def delete_job(job: BackupJob, purge: bool) -> None:
    """Stop the job (a running run is canceled), optionally purge its recovery points, and
    mark it deleted. The row stays, so its id is never handed out again and its runs and
    (unless purged) recovery points stay listed and restorable."""
    if purge:  # first: with the broker down nothing changes and the caller gets 503
        run_commands.purge_points(job)
    run_commands.deactivate(job)
    job.deleted_at = utcnow()
    db.session.commit()
