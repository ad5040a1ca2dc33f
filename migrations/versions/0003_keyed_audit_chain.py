"""Keyed audit chain: where HMAC starts, the key's fingerprint; prune grants scoped to one span.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

Existing rows stay as they are (plain SHA-256): the chain head records the first row hashed
with MESHBOT_AUDIT_KEY once a key is configured. Downgrading a keyed chain leaves rows an older
meshbot cannot verify (it reads their HMAC as a changed SHA-256).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A DELETE passes only for rows of the span prune announced, and only while that span starts
# right after the anchor: prune moves the anchor past it in the same transaction, so neither a
# leftover grant nor one written by hand opens anything beyond that one prefix.
SQLITE_DELETE_TRIGGER = """
    CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    WHEN NOT EXISTS (
        SELECT 1 FROM audit_prune_grants AS grant_, audit_chain AS head
        WHERE head.id = 1
          AND grant_.first_id = head.anchor_event_id + 1
          AND OLD.id BETWEEN grant_.first_id AND grant_.last_id
    )
    BEGIN
        SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused');
    END
"""
SQLITE_DELETE_TRIGGER_0001 = """
    CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    WHEN NOT EXISTS (SELECT 1 FROM audit_prune_grants)
    BEGIN
        SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused');
    END
"""

# The setting now carries the span ('first..last'), with the same rule as SQLite's grant.
POSTGRES_FUNCTION = """
    CREATE OR REPLACE FUNCTION audit_events_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        span text := current_setting('meshbot.audit_prune', true);
        first_id bigint;
        last_id bigint;
    BEGIN
        IF TG_OP = 'DELETE' AND span ~ '^[0-9]+\\.\\.[0-9]+$' THEN
            first_id := split_part(span, '..', 1)::bigint;
            last_id := split_part(span, '..', 2)::bigint;
            IF OLD.id BETWEEN first_id AND last_id AND EXISTS (
                SELECT 1 FROM audit_chain WHERE id = 1 AND anchor_event_id + 1 = first_id
            ) THEN
                RETURN OLD;
            END IF;
        END IF;
        RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
"""
POSTGRES_FUNCTION_0001 = """
    CREATE OR REPLACE FUNCTION audit_events_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND current_setting('meshbot.audit_prune', true) = 'on' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
"""


def upgrade() -> None:
    op.add_column("audit_chain", sa.Column("keyed_from_event_id", sa.BigInteger(), nullable=True))
    op.add_column("audit_chain", sa.Column("key_fingerprint", sa.String(length=16), nullable=True))
    # Grants live only inside a prune's transaction, so the table is empty and can be rebuilt.
    _drop_sqlite_delete_trigger()
    op.drop_table("audit_prune_grants")
    op.create_table(
        "audit_prune_grants",
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("first_id", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_audit_prune_grants")),
    )
    _install(sqlite=SQLITE_DELETE_TRIGGER, postgres=POSTGRES_FUNCTION)


def downgrade() -> None:
    _drop_sqlite_delete_trigger()
    op.drop_table("audit_prune_grants")
    op.create_table(
        "audit_prune_grants",
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_audit_prune_grants")),
    )
    _install(sqlite=SQLITE_DELETE_TRIGGER_0001, postgres=POSTGRES_FUNCTION_0001)
    with op.batch_alter_table("audit_chain") as batch:
        batch.drop_column("key_fingerprint")
        batch.drop_column("keyed_from_event_id")


def _drop_sqlite_delete_trigger() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")


def _install(*, sqlite: str, postgres: str) -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(sqlite)
    elif dialect == "postgresql":
        op.execute(postgres)
    else:
        raise NotImplementedError(f"meshbot's audit triggers exist for sqlite and postgresql, not {dialect}")
