"""Experiment store and audit log: tables, indexes, the chain head, append-only triggers.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64

# PostgreSQL: one function refuses UPDATE, DELETE and TRUNCATE on audit_events, except a DELETE
# in a transaction that set meshbot.audit_prune (SET LOCAL / set_config(..., true)), which only
# `meshbot audit prune` does and which ends with that transaction.
POSTGRES_UP = [
    """
    CREATE FUNCTION audit_events_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND current_setting('meshbot.audit_prune', true) = 'on' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    """
    CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change()
    """,
    """
    CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change()
    """,
]
POSTGRES_DOWN = [
    "DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events",
    "DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events",
    "DROP FUNCTION IF EXISTS audit_events_refuse_change()",
]

# SQLite has no session settings: prune's DELETE passes while its own transaction holds a row in
# audit_prune_grants, which no other connection can see before it is removed again.
SQLITE_UP = [
    """
    CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    BEGIN
        SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused');
    END
    """,
    """
    CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    WHEN NOT EXISTS (SELECT 1 FROM audit_prune_grants)
    BEGIN
        SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused');
    END
    """,
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS audit_events_no_delete",
    "DROP TRIGGER IF EXISTS audit_events_no_update",
]


def _actor_columns(prefix: str, *, nullable: bool) -> list[sa.Column[str]]:
    return [
        sa.Column(f"{prefix}_team", sa.String(length=32), nullable=True),
        sa.Column(f"{prefix}_user", sa.String(length=64), nullable=nullable),
        sa.Column(f"{prefix}_name", sa.String(length=255), nullable=True),
    ]


def upgrade() -> None:
    audit_chain = op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("anchor_event_id", sa.BigInteger(), nullable=False),
        sa.Column("anchor_hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_chain_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain")),
    )
    op.bulk_insert(
        audit_chain,
        [
            {
                "id": 1,
                "last_event_id": 0,
                "last_hash": GENESIS_HASH,
                "anchor_event_id": 0,
                "anchor_hash": GENESIS_HASH,
            }
        ],
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_team_id", sa.String(length=32), nullable=True),
        sa.Column("actor_user_id", sa.String(length=64), nullable=False),
        sa.Column("actor_name", sa.String(length=255), nullable=True),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("verb", sa.String(length=32), nullable=False),
        sa.Column("cluster", sa.String(length=255), nullable=True),
        sa.Column("namespace", sa.String(length=255), nullable=True),
        sa.Column("service", sa.String(length=255), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("experiment_id", sa.String(length=32), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('ok', 'refused', 'denied', 'error')",
            name=op.f("ck_audit_events_outcome"),
        ),
        sa.CheckConstraint(
            "source IN ('slack', 'cli', 'api', 'scheduler')",
            name=op.f("ck_audit_events_source"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_occurred_at", "audit_events", ["occurred_at", "id"])
    op.create_index("ix_audit_events_service", "audit_events", ["service", "occurred_at", "id"])
    op.create_index("ix_audit_events_namespace", "audit_events", ["namespace", "occurred_at", "id"])
    op.create_index("ix_audit_events_actor", "audit_events", ["actor_user_id", "occurred_at", "id"])
    op.create_index("ix_audit_events_experiment", "audit_events", ["experiment_id"])
    op.create_table(
        "audit_prune_grants",
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_audit_prune_grants")),
    )
    op.create_table(
        "channel_bindings",
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("cluster", sa.String(length=255), nullable=False),
        sa.Column("namespace", sa.String(length=255), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        *_actor_columns("updated_by", nullable=False),
        sa.PrimaryKeyConstraint("channel", name=op.f("pk_channel_bindings")),
    )
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("cluster", sa.String(length=255), nullable=False),
        sa.Column("namespace", sa.String(length=255), nullable=False),
        sa.Column("service", sa.String(length=255), nullable=False),
        sa.Column("virtual_services", sa.JSON(), nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=False),
        *_actor_columns("created_by", nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("thread_ts", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        *_actor_columns("ended_by", nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "end_reason IS NULL OR end_reason IN ('expired', 'cleared by user', 'halted', "
            "'guard tripped', 'failed', 'reverted after restart')",
            name=op.f("ck_experiments_end_reason"),
        ),
        sa.CheckConstraint("kind IN ('delay', 'abort')", name=op.f("ck_experiments_kind")),
        sa.CheckConstraint(
            "state IN ('pending', 'active', 'ending', 'ended', 'failed')",
            name=op.f("ck_experiments_state"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
    )
    op.create_index("ix_experiments_state_expires_at", "experiments", ["state", "expires_at"])
    op.create_index("ix_experiments_target", "experiments", ["namespace", "service", "state"])
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cron", sa.String(length=255), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        *_actor_columns("created_by", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reminder_lead_seconds", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.CheckConstraint("(run_at IS NULL) <> (cron IS NULL)", name=op.f("ck_schedules_one_trigger")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
    )
    op.create_index("ix_schedules_channel", "schedules", ["channel"])
    for statement in _triggers(up=True):
        op.execute(statement)


def downgrade() -> None:
    for statement in _triggers(up=False):
        op.execute(statement)
    op.drop_index("ix_schedules_channel", table_name="schedules")
    op.drop_table("schedules")
    op.drop_index("ix_experiments_target", table_name="experiments")
    op.drop_index("ix_experiments_state_expires_at", table_name="experiments")
    op.drop_table("experiments")
    op.drop_table("channel_bindings")
    op.drop_table("audit_prune_grants")
    op.drop_index("ix_audit_events_experiment", table_name="audit_events")
    op.drop_index("ix_audit_events_actor", table_name="audit_events")
    op.drop_index("ix_audit_events_namespace", table_name="audit_events")
    op.drop_index("ix_audit_events_service", table_name="audit_events")
    op.drop_index("ix_audit_events_occurred_at", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_table("audit_chain")


def _triggers(*, up: bool) -> list[str]:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        return POSTGRES_UP if up else POSTGRES_DOWN
    if dialect == "sqlite":
        return SQLITE_UP if up else SQLITE_DOWN
    raise NotImplementedError(f"meshbot's audit triggers exist for sqlite and postgresql, not {dialect}")
