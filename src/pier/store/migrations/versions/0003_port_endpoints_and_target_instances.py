"""instances remember the endpoints of a separate health or metrics port; nodes keep the
autoscaler's target instance count

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("port_endpoints", sa.JSON(), nullable=False, server_default="{}")
        )
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("target_instances", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_column("target_instances")
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_column("port_endpoints")
