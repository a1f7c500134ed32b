"""The history's hot queries, each answered from one index in its own order: runs by job
and by status, newest first by (scheduled_for, id). The id is in the index so that
PostgreSQL reads the first 50 rows in order instead of sorting each scheduled time's ties
(an Incremental Sort per job in `jobs list`); SQLite keeps the rowid in every index
already, so there the plans do not change. The new indexes replace the two they extend.
And finished_at, for the dashboard's timeline (runs that ended in the window).
docs/service.md ("Query plans") shows each plan.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REPLACED = {
    "ix_runs_job_name_scheduled_for_id": ("ix_runs_job_name_scheduled_for", "job_name"),
    "ix_runs_status_scheduled_for_id": ("ix_runs_status_scheduled_for", "status"),
}


def upgrade() -> None:
    for new, (old, leading) in _REPLACED.items():
        op.create_index(new, "runs", [leading, "scheduled_for", "id"])
        op.drop_index(old, table_name="runs")
    op.create_index("ix_runs_finished_at", "runs", ["finished_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_finished_at", table_name="runs")
    for new, (old, leading) in _REPLACED.items():
        op.create_index(old, "runs", [leading, "scheduled_for"])
        op.drop_index(new, table_name="runs")
