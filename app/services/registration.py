"""Registering backup jobs (POST /api/v1/backups): the rules of the seed in one place.

Each partition of the request becomes one job, or one failed result; registration is
atomic per partition (a savepoint each when there are several) and the whole request is
safe to retry: a retry finds the jobs already made and reports them as duplicates, never
makes them twice.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import Insert, bindparam, func, select
from sqlalchemy.exc import IntegrityError

from app.errors import FieldErrors
from app.extensions import db
from app.i18n import t
from app.models import BackupJob, Center, Partition, Repository, Server, User
from app.services import lookup
from app.services.schedule import Schedule, describe, next_fire_time
from app.timeutil import iso_utc, utcnow

ALL_PARTITIONS = "all"


@dataclass
class Registration:
    results: list[dict]

    @property
    def summary(self) -> dict:
        ok = sum(1 for r in self.results if r["state"] == "success")
        return {"total": len(self.results), "successful": ok, "failed": len(self.results) - ok}

    @property
    def status(self) -> int:
        summary = self.summary
        if summary["failed"] == 0:
            return 201
        return 207 if summary["successful"] else 409


def register_backup_jobs(request: dict, created_by: User) -> Registration:
    """`created_by` is the caller; the request's `user` is the job's user (the seed's field).

    The view runs in autocommit (`app.database.autocommit`): one partition is one INSERT,
    atomic by itself. Several partitions share one transaction, opened here before anything
    is read, with a savepoint each.

    The usual request (one partition, the caller as the job's user) is first tried as one
    INSERT that checks everything on the way (`_register_at_once`); when that inserts
    nothing, the steps below find out what to report."""
    registered = _register_at_once(request, created_by)
    if registered is not None:
        return Registration([registered])
    if _several(request["partition"]):
        db.session.commit()  # ends autocommit: from here on, one transaction
    server, repository = lookup.find_server_and_repository(
        request["server"], request["center"], request["repository"]["id"]
    )
    user = lookup.find_user(request["user"], known=created_by)
    _check_repository(repository, request["repository"], server.center_id)

    names = partitions_to_back_up(server, request["partition"], request["excludePartition"])
    if not names:
        raise FieldErrors({"partition": [t("partition_list_empty")]})

    people = {"user_id": user.id, "created_by_id": created_by.id}
    atomic_each = len(names) > 1
    results = [
        _register_one(request, server, repository.id, people, name, atomic_each) for name in names
    ]
    db.session.commit()
    return Registration(results)


def _several(partitions: list[str]) -> bool:
    return len(partitions) > 1 or ALL_PARTITIONS in partitions


def _check_repository(repository: Repository, given: dict, center_id: int) -> None:
    errors = {}
    if given["type"] != repository.type:
        errors["repository.type"] = [
            t("repository_type_mismatch", ref=repository.id, stored=repository.type)
        ]
    if given["path"].rstrip("/") != repository.path.rstrip("/"):
        errors["repository.path"] = [
            t("repository_path_mismatch", ref=repository.id, stored=repository.path)
        ]
    if repository.center_id != center_id:
        errors["repository.id"] = [
            t("repository_other_center", ref=repository.id, center=repository.center.name)
        ]
    if errors:
        raise FieldErrors(errors)


def partitions_to_back_up(server: Server, requested: list[str], excluded: list[str]) -> list[str]:
    """The requested names in order, `all` expanded, exclusions removed, duplicates merged."""
    names: list[str] = []
    for name in requested:
        expanded = [p.name for p in server.partitions] if name == ALL_PARTITIONS else [name]
        names.extend(n for n in expanded if n not in names)
    return [n for n in names if n not in set(excluded)]


def _register_one(
    request, server: Server, repository_id: int, people: dict, name: str, atomic_each: bool
) -> dict:
    """One partition's job, or its failure. A name already taken on the partition is
    refused by the unique index `uq_backup_jobs_live_name`, which also settles two
    identical requests racing. With several partitions each insert has a savepoint, so a
    refused one leaves the others; with one, a refusal rolls back the whole (empty)
    transaction. The result is built from what is at hand: nothing is read back."""
    result = _failed(request, name)
    partition = next((p for p in server.partitions if p.name == name), None)
    problem = _partition_problem(request, server, partition, name) or _encryption_problem(
        request, server
    )
    if problem:
        result["errorMessage"] = problem
        return result
    duplicate = _duplicate_message(request, server, name)  # before a rollback expires `server`
    job = _new_job(request, server.id, partition.id, repository_id, people)
    try:
        if atomic_each:
            with db.session.begin_nested():
                job_id = db.session.scalar(_INSERT_JOB, job)
        else:
            job_id = db.session.scalar(_INSERT_JOB, job)
    except IntegrityError:
        if not atomic_each:
            db.session.rollback()
        result["errorMessage"] = duplicate
        return result
    result.update(state="success", id=job_id, nextRunAt=iso_utc(job["next_run_at"]))
    return result


def _failed(request, name: str) -> dict:
    """A partition's result before it is registered."""
    schedule: Schedule = request["schedule"]
    return {
        "state": "fail",
        "jobName": request["jobName"],
        "partition": name,
        "jobMode": request["type"],
        "autoStart": request["autoStart"],
        "schedule": {"basic": schedule.expression, "advanced": describe(schedule)},
        "errorMessage": None,
        "id": None,
        "nextRunAt": None,
    }


def _register_at_once(request, created_by: User) -> dict | None:
    """One partition for the caller as one `INSERT ... SELECT ... RETURNING id`: the SELECT
    finds the server, its partition and the repository and holds every rule of the steps
    in `register_backup_jobs` (center, `_check_repository`, `_partition_problem`), so it
    yields a row only when those steps would register the job. The result, or None when
    nothing was inserted (an error to report, a name taken, or a request it does not
    cover: several partitions, another user, a reference that is not a plain id or name);
    the caller then takes the steps, which report what applies. A rule added to those
    steps must be added here too (or make this return None)."""
    names = request["partition"]
    server_ref, center_ref = request["server"], request["center"]
    repository_id = lookup.as_id(request["repository"]["id"])
    if (
        len(names) != 1
        or names[0] == ALL_PARTITIONS
        or names[0] in request["excludePartition"]
        or repository_id is None
        or not lookup.names_user(created_by, request["user"])
        or request["encryption"] == "aes256"  # the steps check the agent's key
    ):
        return None
    server_id, center_id = lookup.as_id(server_ref), lookup.as_id(center_ref)
    people = {"user_id": created_by.id, "created_by_id": created_by.id}
    job = _new_job(request, None, None, None, people)
    del job["server_id"], job["partition_id"], job["repository_id"]
    statement = _insert_checked(tuple(job), server_id is not None, center_id is not None)
    try:
        job_id = db.session.scalar(
            statement,
            {
                **job,
                "server_ref": server_id if server_id is not None else str(server_ref),
                "center_ref": center_id if center_id is not None else str(center_ref),
                "partition_name": names[0],
                "no_block": bool(request["excludeDir"]),
                "repository_id": repository_id,
                "repository_type": request["repository"]["type"],
                "repository_path": request["repository"]["path"].rstrip("/"),
            },
        )
    except IntegrityError:  # the name is taken: the steps report it
        db.session.rollback()
        return None
    if job_id is None:
        return None
    result = _failed(request, names[0])
    result.update(state="success", id=job_id, nextRunAt=iso_utc(job["next_run_at"]))
    return result


@functools.cache
def _insert_checked(given: tuple[str, ...], server_by_id: bool, center_by_id: bool) -> Insert:
    """The statement of `_register_at_once` for the columns `given` as parameters, built
    once per kind of reference."""
    table = BackupJob.__table__
    server = Server.id if server_by_id else Server.name
    center = Server.center_id if center_by_id else Center.name
    rows = (
        select(
            *(bindparam(name, type_=table.c[name].type) for name in given),
            Server.id,
            Partition.id,
            Repository.id,
        )
        .select_from(Server)
        .join(Center, Center.id == Server.center_id)
        .join(Partition, Partition.server_id == Server.id)
        .join(Repository, Repository.center_id == Server.center_id)
        .where(
            server == bindparam("server_ref"),
            center == bindparam("center_ref"),
            Partition.name == bindparam("partition_name"),
            # excludeDir is refused on a block partition (_partition_problem)
            (Partition.kind != "block") | ~bindparam("no_block", type_=db.Boolean),
            Repository.id == bindparam("repository_id"),
            Repository.type == bindparam("repository_type"),
            func.rtrim(Repository.path, "/") == bindparam("repository_path"),
        )
    )
    return (
        table.insert()
        .from_select([*given, "server_id", "partition_id", "repository_id"], rows)
        .returning(table.c.id)
    )


def _partition_problem(request, server, partition: Partition | None, name: str) -> str | None:
    if partition is None:
        return t("partition_not_on_server", partition=name, server=server.name)
    if request["excludeDir"] and partition.kind == "block":
        return t("exclude_dir_on_block", partition=name)
    return None


def _encryption_problem(request, server: Server) -> str | None:
    """An encrypted job needs a master key on the server's agent. An agent that never reported
    (an older one, or none started yet) is not judged: the run says it, as before
    (docs/decisions.md, "Agent capabilities")."""
    if request["encryption"] != "aes256" or server.engine_version is None:
        return None
    if server.master_key_fingerprint is None:
        return t("agent_has_no_master_key", server=server.name)
    return None


def _duplicate_message(request, server, name) -> str:
    return t("job_exists", server=server.name, partition=name, name=request["jobName"])


# One INSERT ... RETURNING id, built once; the columns not given take their defaults.
_INSERT_JOB = db.insert(BackupJob.__table__).returning(BackupJob.__table__.c.id)


def _new_job(request, server_id, partition_id, repository_id, people: dict) -> dict:
    """The new job's columns (the others take their defaults)."""
    schedule: Schedule = request["schedule"]
    active = request["autoStart"] == "yes"
    return dict(
        name=request["jobName"],
        server_id=server_id,
        partition_id=partition_id,
        repository_id=repository_id,
        **people,
        mode=request["type"],
        compression=request.get("compression"),
        encryption=request["encryption"],
        rotation=request["rotation"],
        network_limit=request["networkLimit"],
        exclude_dirs=request["excludeDir"],
        mail_event=request.get("mailEvent"),
        description=request.get("description"),
        schedule_type=schedule.type,
        schedule_expr=schedule.expression,
        timezone=schedule.timezone,
        auto_start=active,
        active=active,
        status="scheduled" if active else "waiting",
        next_run_at=next_fire_time(schedule, utcnow()) if active else None,
    )
