"""Retention: an index on runs.parent_run_id (is a run some kept run's chain parent?)
and the maintenance_leases table (one scheduler prunes at a time).

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_runs_parent_run_id", "runs", ["parent_run_id"])
    op.create_table(
        "maintenance_leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_maintenance_leases"),
    )


def downgrade() -> None:
    op.drop_table("maintenance_leases")
    op.drop_index("ix_runs_parent_run_id", table_name="runs")
