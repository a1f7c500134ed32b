"""Jobs: paused_at and paused_by (`orchestrator pause`, state kept apart from the job's
file), and start_fired_at (the claim of a `run_on_start` fire among several schedulers).

Revision ID: 0008
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("paused_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("start_fired_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("start_fired_at")
        batch_op.drop_column("paused_by")
        batch_op.drop_column("paused_at")
