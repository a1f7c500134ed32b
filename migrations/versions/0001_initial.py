"""Initial schema: jobs, runs (one row per fire and attempt), port leases.

Revision ID: 0001
Revises:

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=1024), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("name", name=op.f("uq_jobs_name")),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_name", sa.String(length=63), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("first_run_id", sa.Integer(), nullable=True),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("container_id", sa.String(length=128), nullable=True),
        sa.Column("image", sa.String(length=512), nullable=True),
        sa.Column("image_digest", sa.String(length=256), nullable=True),
        sa.Column("ports", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("output_truncated", sa.Boolean(), nullable=False),
        sa.Column("output_limit", sa.Integer(), nullable=True),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'succeeded', 'failed', 'timed_out', "
            "'cancelled', 'lost', 'skipped')",
            name=op.f("ck_runs_status"),
        ),
        sa.CheckConstraint(
            "trigger IN ('schedule', 'manual', 'retry', 'catchup')", name=op.f("ck_runs_trigger")
        ),
        sa.CheckConstraint("attempt >= 1", name=op.f("ck_runs_attempt")),
        sa.ForeignKeyConstraint(
            ["first_run_id"],
            ["runs.id"],
            name=op.f("fk_runs_first_run_id_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint(
            "job_name",
            "scheduled_for",
            "attempt",
            name=op.f("uq_runs_job_name_scheduled_for_attempt"),
        ),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_runs_first_run_id"), ["first_run_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_runs_job_name_scheduled_for"),
            ["job_name", "scheduled_for"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_runs_scheduled_for"), ["scheduled_for"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_runs_status_scheduled_for"), ["status", "scheduled_for"], unique=False
        )

    op.create_table(
        "port_leases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host_ip", sa.String(length=45), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("protocol", sa.String(length=3), nullable=False),
        sa.Column("container_port", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("job_name", sa.String(length=63), nullable=True),
        sa.Column("leased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_port_leases_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_port_leases")),
        sa.UniqueConstraint(
            "host_ip", "port", "protocol", name=op.f("uq_port_leases_host_ip_port_protocol")
        ),
    )
    with op.batch_alter_table("port_leases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_port_leases_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("port_leases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_port_leases_run_id"))

    op.drop_table("port_leases")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_status_scheduled_for"))
        batch_op.drop_index(batch_op.f("ix_runs_scheduled_for"))
        batch_op.drop_index(batch_op.f("ix_runs_job_name_scheduled_for"))
        batch_op.drop_index(batch_op.f("ix_runs_first_run_id"))

    op.drop_table("runs")
    op.drop_table("jobs")
