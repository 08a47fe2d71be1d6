"""a store-wide change counter: every write the controller reads on a tick counts one
change, and each node row keeps the number of its latest, so a tick reads only the rows
changed since the last it saw (none when nothing changed)

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    changes = op.create_table(
        "store_changes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("nodes_removed_seq", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(changes, [{"id": 1, "seq": 0, "nodes_removed_seq": 0}])
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("change_seq", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.create_index("ix_nodes_change_seq", ["change_seq"])


def downgrade() -> None:
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_index("ix_nodes_change_seq")
        batch_op.drop_column("change_seq")
    op.drop_table("store_changes")
