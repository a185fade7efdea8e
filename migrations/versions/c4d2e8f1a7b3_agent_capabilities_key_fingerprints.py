"""agent capabilities: engine version and master-key fingerprint (issue 10)

- servers: engine_version, master_key_fingerprint, as the server's agent reports them in its
  heartbeat (NULL until it does).
- recovery_points: key_fingerprint, the fingerprint of the master key an encrypted point was
  made with (NULL for points made before).

Revision ID: c4d2e8f1a7b3
Revises: a1c3e5f7b9d2
Create Date: 2026-11-28 11:45:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c4d2e8f1a7b3"
down_revision = "a1c3e5f7b9d2"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("servers") as batch:
        batch.add_column(sa.Column("engine_version", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("master_key_fingerprint", sa.String(length=32), nullable=True))
    with op.batch_alter_table("recovery_points") as batch:
        batch.add_column(sa.Column("key_fingerprint", sa.String(length=32), nullable=True))


def downgrade():
    with op.batch_alter_table("recovery_points") as batch:
        batch.drop_column("key_fingerprint")
    with op.batch_alter_table("servers") as batch:
        batch.drop_column("master_key_fingerprint")
        batch.drop_column("engine_version")
