"""Database models: users and tokens, the inventory (centers, servers, partitions,
repositories) and backup jobs."""

from __future__ import annotations

import uuid as uuid_module
from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.timeutil import utcnow

ROLES = ("admin", "operator", "viewer")
PARTITION_KINDS = ("block", "directory")
JOB_MODES = ("full", "incremental")
COMPRESSIONS = ("gzip", "lz4")
ENCRYPTIONS = ("aes256", "none")
SCHEDULE_TYPES = ("hourly", "daily", "weekly", "monthly", "custom", "once")
JOB_STATUSES = ("waiting", "scheduled", "running", "completed")
RUN_TRIGGERS = ("schedule", "manual", "retry")
RUN_STATES = ("queued", "running", "success", "failed", "canceled", "skipped", "missed")
UNFINISHED_RUN_STATES = ("queued", "running", "canceling")
_UNFINISHED_SQL = "state IN ('queued', 'running', 'canceling')"
RESTORE_STATES = ("queued", "running", "success", "failed", "canceled")
POINT_STATES = ("available", "missing")
VERIFICATION_STATES = ("queued", "running", "success", "failed")
_LIVE_JOB_SQL = "deleted_at IS NULL"
# SQLite hands out the id of a deleted row again unless a table says AUTOINCREMENT; ids of
# jobs, runs, points and restores are never reused (SPEC "Identity"), so every table says it.
_NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class User(db.Model):
    __tablename__ = "users"
    __table_args__ = _NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A disabled user can neither log in nor use a token issued before.
    disabled_at: Mapped[datetime | None]

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", cascade="all, delete")


class ApiToken(db.Model):
    """A bearer token. Only the SHA-256 of the token is stored; the token is shown once."""

    __tablename__ = "api_tokens"
    __table_args__ = _NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")


class Center(db.Model):
    __tablename__ = "centers"
    __table_args__ = _NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    servers: Mapped[list[Server]] = relationship(back_populates="center")


class Server(db.Model):
    """A protected machine. Names are unique across centers: a server's agent listens on
    the queue `zdm.server.<name>`."""

    __tablename__ = "servers"
    __table_args__ = _NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    center_id: Mapped[int] = mapped_column(ForeignKey("centers.id"), index=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    online: Mapped[bool] = mapped_column(default=False)
    last_seen: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # What its agent reported in its heartbeat: the engine's version (NULL: the agent never
    # reported, an older agent or none yet) and a short fingerprint of its master key
    # (never the key; NULL: no key). docs/decisions.md, "Agent capabilities".
    engine_version: Mapped[str | None] = mapped_column(String(32))
    master_key_fingerprint: Mapped[str | None] = mapped_column(String(32))

    center: Mapped[Center] = relationship(back_populates="servers")
    partitions: Mapped[list[Partition]] = relationship(
        back_populates="server", cascade="all, delete-orphan", order_by="Partition.position"
    )


class Partition(db.Model):
    __tablename__ = "partitions"
    __table_args__ = (UniqueConstraint("server_id", "name"), _NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    mountpoint: Mapped[str | None] = mapped_column(String(1024))
    kind: Mapped[str] = mapped_column(String(16))
    size: Mapped[int | None] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(default=0)

    server: Mapped[Server] = relationship(back_populates="partitions")


class Repository(db.Model):
    __tablename__ = "repositories"
    __table_args__ = (UniqueConstraint("center_id", "path"), _NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(primary_key=True)
    center_id: Mapped[int] = mapped_column(ForeignKey("centers.id"), index=True)
    type: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Verification on a schedule (cron, in ZDM_TIMEZONE); beat fires it like a job.
    verify_schedule: Mapped[str | None] = mapped_column(String(128))
    verify_read_data: Mapped[int] = mapped_column(
        default=0, server_default="0"
    )  # percent of objects decoded
    verify_next_at: Mapped[datetime | None] = mapped_column(index=True)
    last_verified_at: Mapped[datetime | None]

    center: Mapped[Center] = relationship()


# Indexes of live jobs for the list's filters: name -> leading columns (then `id`).
_LIVE_JOB_LISTS = {
    "id": (),
    "server": ("server_id",),
    "partition": ("partition_id",),
    "repository": ("repository_id",),
    "status": ("status",),
    "mode": ("mode",),
    "by_name": ("name",),
}


def _live_job_index(name: str, *columns: str) -> Index:
    return Index(
        name,
        *columns,
        sqlite_where=text(_LIVE_JOB_SQL),
        postgresql_where=text(_LIVE_JOB_SQL),
    )


def _new_uuid() -> str:
    return str(uuid_module.uuid4())


def _engine_job_name(context) -> str:
    return f"job-{context.get_current_parameters()['uuid']}"


class BackupJob(db.Model):
    """One partition of one server, backed up on a schedule into a repository."""

    __tablename__ = "backup_jobs"
    __table_args__ = (
        # A name is unique per (server, partition) among the jobs that are not deleted.
        Index(
            "uq_backup_jobs_live_name",
            "server_id",
            "partition_id",
            "name",
            unique=True,
            sqlite_where=text(_LIVE_JOB_SQL),
            postgresql_where=text(_LIVE_JOB_SQL),
        ),
        # GET /backups pages live jobs by id, counted and filtered on these columns alone:
        # each filter has an index that yields its jobs in id order (docs/decisions.md,
        # "Lists and registration at scale").
        *(
            _live_job_index(f"ix_backup_jobs_live_{name}", *columns, "id")
            for name, columns in _LIVE_JOB_LISTS.items()
        ),
        _NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stable identity of the job's data: the engine names its points `engine_job`, which is
    # `job-<uuid>` (jobs registered before uuids keep the `job-<id>` their points already
    # carry; see migration 4e45ceba2b0e), so no later job ever reads or prunes them.
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=_new_uuid)
    engine_job: Mapped[str] = mapped_column(String(64), unique=True, default=_engine_job_name)
    name: Mapped[str] = mapped_column(String(128))
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id"), index=True)
    partition_id: Mapped[int] = mapped_column(ForeignKey("partitions.id"))
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))

    mode: Mapped[str] = mapped_column(String(16))
    compression: Mapped[str | None] = mapped_column(String(16))
    encryption: Mapped[str] = mapped_column(String(16), default="none")
    rotation: Mapped[int] = mapped_column(default=7)
    network_limit: Mapped[int] = mapped_column(default=0)
    exclude_dirs: Mapped[list] = mapped_column(JSON, default=list)
    mail_event: Mapped[str | None] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(Text)

    schedule_type: Mapped[str] = mapped_column(String(16))
    schedule_expr: Mapped[str] = mapped_column(String(128))
    timezone: Mapped[str] = mapped_column(String(64))
    auto_start: Mapped[bool] = mapped_column(default=True)
    # Whether beat fires this job: set by autoStart "yes", /start; cleared by /stop.
    active: Mapped[bool] = mapped_column(default=False, index=True)
    status: Mapped[str] = mapped_column(String(16))
    next_run_at: Mapped[datetime | None] = mapped_column(index=True)

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Deleting keeps the row (and so its runs and id): the job leaves /backups.
    deleted_at: Mapped[datetime | None]

    server: Mapped[Server] = relationship()
    partition: Mapped[Partition] = relationship()
    repository: Mapped[Repository] = relationship()
    user: Mapped[User] = relationship(foreign_keys=[user_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])


class Run(db.Model):
    """One execution of a job: one per (job, fire time), guarded by the unique constraint,
    which is what makes two beats, a restarted beat or a redelivered message harmless."""

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("job_id", "scheduled_for", "trigger"),
        # Runs of one job never overlap: at most one unfinished run per job, enforced by
        # the database so that /run racing beat cannot start two.
        Index(
            "uq_runs_one_unfinished_per_job",
            "job_id",
            unique=True,
            sqlite_where=text(_UNFINISHED_SQL),
            postgresql_where=text(_UNFINISHED_SQL),
        ),
        # A job's runs newest first (/backups/{id}/runs), and its latest started run
        # (the `status.time` of every item of GET /backups) in one index probe per job.
        Index("ix_runs_job_id_id", "job_id", "id"),
        Index("ix_runs_job_started", "job_id", "started_at", "id"),
        _NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("backup_jobs.id", ondelete="CASCADE"))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    trigger: Mapped[str] = mapped_column(String(16))
    scheduled_for: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), index=True)
    retry_of_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    dispatched_at: Mapped[datetime | None]  # when its message reached the broker
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    worker: Mapped[str | None] = mapped_column(String(255))
    mode: Mapped[str | None] = mapped_column(String(16))  # the mode the engine really used
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_read: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_written: Mapped[int] = mapped_column(BigInteger, default=0)
    percent: Mapped[float] = mapped_column(default=0.0)
    speed: Mapped[float] = mapped_column(default=0.0)  # bytes per second
    error_message: Mapped[str | None] = mapped_column(Text)
    log: Mapped[list] = mapped_column(JSON, default=list)

    job: Mapped[BackupJob] = relationship()
    requested_by: Mapped[User | None] = relationship()


class RecoveryPoint(db.Model):
    """A point the engine wrote; `engine_id` names it inside the repository. It outlives its
    job (job_id becomes NULL) unless the job is deleted with purge."""

    __tablename__ = "recovery_points"
    __table_args__ = (
        # The lists of points (newest first) filtered by job, server or repository.
        Index("ix_recovery_points_job_id_id", "job_id", "id"),
        Index("ix_recovery_points_server_id_id", "server_id", "id"),
        Index("ix_recovery_points_repository_id_id", "repository_id", "id"),
        _NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    engine_id: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("backup_jobs.id", ondelete="SET NULL"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id"))
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id"))
    partition_name: Mapped[str] = mapped_column(String(255))
    partition_kind: Mapped[str] = mapped_column(String(16))
    engine_job: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    source_size: Mapped[int] = mapped_column(BigInteger, default=0)
    stored_size: Mapped[int] = mapped_column(BigInteger, default=0)
    compression: Mapped[str | None] = mapped_column(String(16))
    encrypted: Mapped[bool] = mapped_column(default=False)
    # The point file's checksum (hex) as the engine reported it when the run finished;
    # restore and verify refuse a point file that does not match it.
    digest: Mapped[str | None] = mapped_column(String(64))
    # `missing` when reconciliation found the point file gone: shown, never restorable.
    state: Mapped[str] = mapped_column(String(16), default="available", server_default="available")
    # Set by verification when an object the point needs is damaged or missing.
    damaged: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    # An encrypted point's master key, as the fingerprint of the agent that made it (NULL:
    # not encrypted, or made before fingerprints were recorded).
    key_fingerprint: Mapped[str | None] = mapped_column(String(32))

    repository: Mapped[Repository] = relationship()


class Restore(db.Model):
    __tablename__ = "restores"
    __table_args__ = _NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    recovery_point_id: Mapped[int | None] = mapped_column(
        ForeignKey("recovery_points.id", ondelete="SET NULL")
    )
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id"))
    target: Mapped[str] = mapped_column(String(1024))
    overwrite: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(16), index=True)
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_restored: Mapped[int] = mapped_column(BigInteger, default=0)
    percent: Mapped[float] = mapped_column(default=0.0)
    speed: Mapped[float] = mapped_column(default=0.0)
    error_message: Mapped[str | None] = mapped_column(Text)
    log: Mapped[list] = mapped_column(JSON, default=list)

    recovery_point: Mapped[RecoveryPoint | None] = relationship()
    server: Mapped[Server] = relationship()
    requested_by: Mapped[User | None] = relationship()


class Verification(db.Model):
    """One verification of a repository, run by an agent that uses it (SPEC "Trust")."""

    __tablename__ = "verifications"
    __table_args__ = _NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), index=True
    )
    server_id: Mapped[int | None] = mapped_column(ForeignKey("servers.id", ondelete="SET NULL"))
    trigger: Mapped[str] = mapped_column(String(16))  # manual | schedule
    read_data: Mapped[int] = mapped_column(default=0)  # percent of objects fully decoded
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(16), index=True)
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    points_checked: Mapped[int] = mapped_column(default=0)
    objects_checked: Mapped[int] = mapped_column(default=0)
    problems: Mapped[list] = mapped_column(JSON, default=list)
    damaged_points: Mapped[list] = mapped_column(JSON, default=list)  # recovery point ids
    error_message: Mapped[str | None] = mapped_column(Text)

    repository: Mapped[Repository] = relationship()
    server: Mapped[Server | None] = relationship()
    requested_by: Mapped[User | None] = relationship()


class DamagedObject(db.Model):
    """An object verification found damaged or missing. Backups of the repository store
    such blocks again instead of reusing them; a later clean verification clears it."""

    __tablename__ = "damaged_objects"
    __table_args__ = (UniqueConstraint("repository_id", "object_id"), _NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), index=True
    )
    object_id: Mapped[str] = mapped_column(String(64))  # hex
    pack_id: Mapped[str] = mapped_column(String(32))  # hex
    verification_id: Mapped[int | None] = mapped_column(
        ForeignKey("verifications.id", ondelete="SET NULL")
    )
    found_at: Mapped[datetime] = mapped_column(default=utcnow)
