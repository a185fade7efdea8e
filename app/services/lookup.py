"""Finding things by id or by name, with a 404 that names what is missing."""

import functools

from sqlalchemy import Select, bindparam, func, or_
from sqlalchemy.orm import joinedload

from app.errors import ApiError
from app.extensions import db
from app.models import BackupJob, Center, Repository, Server, User

MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL


def as_id(ref) -> int | None:
    """`ref` as a database id, or None when it is a name ("²" is a digit, but not an id)."""
    text = str(ref).strip()
    if text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= MAX_ID:
        return int(text)
    return None


def by_id_or_name(model, ref):
    """A filter condition: the row whose id is `ref`, or whose name is `ref`."""
    ident = as_id(ref)
    if ident is None:
        return model.name == str(ref)
    return or_(model.id == ident, model.name == str(ref))


def _by_id_or_name(model, ref, name_column):
    ident = as_id(ref)
    if ident is not None:
        found = db.session.get(model, ident)
        if found is not None:
            return found
    return db.session.scalar(db.select(model).where(name_column == str(ref)))


def find_center(ref) -> Center:
    center = _by_id_or_name(Center, ref, Center.name)
    if center is None:
        raise ApiError(404, "center_not_found", ref=ref)
    return center


def find_server(ref, center: Center | None = None) -> Server:
    server = _by_id_or_name(Server, ref, Server.name)
    if server is None:
        raise ApiError(404, "server_not_found", ref=ref)
    if center is not None and server.center_id != center.id:
        raise ApiError(404, "server_not_in_center", ref=ref, center=center.name)
    return server


def find_server_and_repository(server_ref, center_ref, repository_ref) -> tuple[Server, Repository]:
    """`find_server(server_ref, find_center(center_ref))` and `find_repository(repository_ref)`
    in one statement, with the server's center and partitions loaded; the same 404s, in
    the same order (center, server, repository)."""
    ident = as_id(server_ref)
    rows = db.session.execute(
        _server_and_repository(by_id=ident is not None),
        {"ident": ident, "name": str(server_ref), "repository_id": as_id(repository_ref)},
    ).unique()
    found = {server: repository for server, repository in rows}
    server = next((s for s in found if s.id == ident), None) or next(
        (s for s in found if s.name == str(server_ref)), None
    )
    if server is None or not _is_center(server.center, center_ref):
        server = find_server(server_ref, find_center(center_ref))  # the 404 that applies
    repository = found.get(server)
    return server, repository if repository is not None else find_repository(repository_ref)


@functools.cache
def _server_and_repository(by_id: bool) -> Select:
    """The statement of `find_server_and_repository`, built once per shape of reference
    (registration runs it on every request)."""
    named = Server.name == bindparam("name")
    return (
        db.select(Server, Repository)
        .options(joinedload(Server.center, innerjoin=True), joinedload(Server.partitions))
        .outerjoin(Repository, Repository.id == bindparam("repository_id"))
        .where(or_(Server.id == bindparam("ident"), named) if by_id else named)
    )


def _is_center(center: Center, ref) -> bool:
    """Whether `ref` finds `center` as `find_center` would (an id first, then a name)."""
    ident = as_id(ref)
    if center.id == ident:
        return True
    if center.name != str(ref):
        return False
    return ident is None or db.session.get(Center, ident) is None


def find_repository(ref) -> Repository:
    ident = as_id(ref)
    repository = db.session.get(Repository, ident) if ident is not None else None
    if repository is None:
        raise ApiError(404, "repository_not_found", ref=ref)
    return repository


def find_user(ref, known: User | None = None) -> User:
    """The user `ref` (id or e-mail) names. `known` (the caller, already loaded) is returned
    without a query when `ref` names it as surely as the lookup would."""
    if known is not None and names_user(known, ref):
        return known
    user = _by_id_or_name(User, ref, User.email)
    if user is None:
        user = db.session.scalar(db.select(User).where(func.lower(User.email) == str(ref).lower()))
    if user is None:
        raise ApiError(404, "user_not_found", ref=ref)
    return user


def names_user(user: User, ref) -> bool:
    """Whether `ref` (an id or an e-mail) names `user` as surely as `find_user` would."""
    ident = as_id(ref)
    return user.id == ident if ident is not None else user.email == str(ref)


def _live_job(ref) -> BackupJob | None:
    """The job with id `ref` unless it was deleted."""
    ident = as_id(ref)
    job = db.session.get(BackupJob, ident) if ident is not None else None
    return job if job is not None and job.deleted_at is None else None


def find_job(ref) -> BackupJob:
    """A job that is not deleted, by id, or by name when exactly one such job has that name."""
    job = _live_job(ref)
    if job is not None:
        return job
    named = (BackupJob.name == str(ref), BackupJob.deleted_at.is_(None))
    jobs = db.session.scalars(db.select(BackupJob).where(*named).limit(2)).all()
    if not jobs:
        raise ApiError(404, "job_not_found", ref=ref)
    if len(jobs) > 1:
        count = db.session.scalar(db.select(func.count()).select_from(BackupJob).where(*named))
        raise ApiError(409, "job_name_ambiguous", ref=ref, count=count)
    return jobs[0]
