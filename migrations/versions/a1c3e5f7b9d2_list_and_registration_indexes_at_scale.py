"""lists at scale: indexes that match the list filters (issue 8)

- backup_jobs: one partial index per list filter over live jobs (`deleted_at IS NULL`),
  each ending in `id`, so GET /backups counts and pages a filter from its index alone.
  They replace the single-column indexes on name, status and deleted_at.
- runs: (job_id, id) for a job's runs newest first, replacing (job_id); and
  (job_id, started_at, id) for the latest started run of each job on a page.
- recovery_points: (job_id, id), replacing (job_id); (server_id, id), (repository_id, id).

Revision ID: a1c3e5f7b9d2
Revises: 4e45ceba2b0e
Create Date: 2026-11-28 09:17:52.440660

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "a1c3e5f7b9d2"
down_revision = "4e45ceba2b0e"
branch_labels = None
depends_on = None

_LIVE = "deleted_at IS NULL"
LIVE_JOB_INDEXES = {
    "ix_backup_jobs_live_id": ["id"],
    "ix_backup_jobs_live_server": ["server_id", "id"],
    "ix_backup_jobs_live_partition": ["partition_id", "id"],
    "ix_backup_jobs_live_repository": ["repository_id", "id"],
    "ix_backup_jobs_live_status": ["status", "id"],
    "ix_backup_jobs_live_mode": ["mode", "id"],
    "ix_backup_jobs_live_by_name": ["name", "id"],
}
REPLACED_JOB_INDEXES = {
    "ix_backup_jobs_deleted_at": ["deleted_at"],
    "ix_backup_jobs_name": ["name"],
    "ix_backup_jobs_status": ["status"],
}
# table -> (indexes added, indexes they replace)
PLAIN_INDEXES = {
    "runs": (
        {
            "ix_runs_job_id_id": ["job_id", "id"],
            "ix_runs_job_started": ["job_id", "started_at", "id"],
        },
        {"ix_runs_job_id": ["job_id"]},
    ),
    "recovery_points": (
        {
            "ix_recovery_points_job_id_id": ["job_id", "id"],
            "ix_recovery_points_server_id_id": ["server_id", "id"],
            "ix_recovery_points_repository_id_id": ["repository_id", "id"],
        },
        {"ix_recovery_points_job_id": ["job_id"]},
    ),
}


def _live_where() -> dict:
    return {"sqlite_where": sa.text(_LIVE), "postgresql_where": sa.text(_LIVE)}


def upgrade():
    for name in REPLACED_JOB_INDEXES:
        op.drop_index(name, table_name="backup_jobs")
    for name, columns in LIVE_JOB_INDEXES.items():
        op.create_index(name, "backup_jobs", columns, **_live_where())
    for table, (added, replaced) in PLAIN_INDEXES.items():
        for name in replaced:
            op.drop_index(name, table_name=table)
        for name, columns in added.items():
            op.create_index(name, table, columns)


def downgrade():
    for table, (added, replaced) in PLAIN_INDEXES.items():
        for name in added:
            op.drop_index(name, table_name=table)
        for name, columns in replaced.items():
            op.create_index(name, table, columns)
    for name in LIVE_JOB_INDEXES:
        op.drop_index(name, table_name="backup_jobs")
    for name, columns in REPLACED_JOB_INDEXES.items():
        op.create_index(name, "backup_jobs", columns)
