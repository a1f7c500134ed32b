"""PostgreSQL: NOTIFY orchestrator_changes when a job is added, changed or deleted, a run
is queued for any scheduler (pending, no owner) or a notification is queued, so that an
idle service LISTENs instead of polling (orchestrator/store/changes.py). SQLite needs
nothing: the service reads PRAGMA data_version.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FUNCTION = """
CREATE OR REPLACE FUNCTION orchestrator_notify_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('orchestrator_changes', TG_TABLE_NAME);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""
_TRIGGERS = {
    # One NOTIFY per statement: an apply of 10,000 jobs is one wake-up.
    "orchestrator_jobs_changed": ("AFTER INSERT OR UPDATE OR DELETE ON jobs FOR EACH STATEMENT"),
    # Only runs another scheduler may take: not a heartbeat, not our own fires.
    "orchestrator_runs_queued": (
        "AFTER INSERT OR UPDATE OF status, owner, due_at ON runs FOR EACH ROW "
        "WHEN (NEW.status = 'pending' AND NEW.owner IS NULL)"
    ),
    "orchestrator_notifications_queued": (
        "AFTER INSERT OR UPDATE OF status, next_attempt_at ON notifications FOR EACH ROW "
        "WHEN (NEW.status = 'pending')"
    ),
}


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(_FUNCTION)
    for name, when in _TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION orchestrator_notify_change()")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for name, when in _TRIGGERS.items():
        table = when.split(" ON ", 1)[1].split()[0]
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS orchestrator_notify_change()")
