"""nodes remember the runtime they are bound to (image nodes: docker, model nodes: local)

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("runtime", sa.String(length=32), nullable=True))
    nodes = sa.table("nodes", sa.column("id", sa.Integer), sa.column("spec", sa.JSON),
                     sa.column("runtime", sa.String))  # fmt: skip
    connection = op.get_bind()
    for node_id, spec in connection.execute(sa.select(nodes.c.id, nodes.c.spec)).all():
        runtime = "docker" if (spec or {}).get("image") is not None else "local"
        connection.execute(nodes.update().where(nodes.c.id == node_id).values(runtime=runtime))
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.alter_column("runtime", existing_type=sa.String(length=32), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_column("runtime")
