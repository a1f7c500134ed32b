"""Chains: a run started by another's end (trigger 'chain'), and that parent run.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGGERS = "trigger IN ('schedule', 'manual', 'retry', 'catchup', 'chain')"
OLD_TRIGGERS = "trigger IN ('schedule', 'manual', 'retry', 'catchup')"


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_run_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_runs_parent_run_id_runs"),
            "runs",
            ["parent_run_id"],
            ["id"],
            ondelete="SET NULL",
        )
        # One chained run per target and parent: the key of a chain's "fire".
        batch_op.create_index(
            batch_op.f("ix_runs_job_name_parent_run_id"),
            ["job_name", "parent_run_id"],
            unique=True,
        )
        batch_op.drop_constraint(batch_op.f("ck_runs_trigger"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_runs_trigger"), TRIGGERS)


def downgrade() -> None:
    op.execute("DELETE FROM runs WHERE trigger = 'chain'")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_runs_trigger"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_runs_trigger"), OLD_TRIGGERS)
        batch_op.drop_index(batch_op.f("ix_runs_job_name_parent_run_id"))
        batch_op.drop_constraint(batch_op.f("fk_runs_parent_run_id_runs"), type_="foreignkey")
        batch_op.drop_column("parent_run_id")
