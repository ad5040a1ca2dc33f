"""Slack front state shared by every replica: open confirmation questions, seen deliveries.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_confirmations",
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("actor_team", sa.String(length=32), nullable=True),
        sa.Column("actor_user", sa.String(length=64), nullable=False),
        sa.Column("actor_name", sa.String(length=255), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("question", sa.JSON(), nullable=False),
        sa.Column("response_url", sa.Text(), nullable=True),
        sa.Column("message_ts", sa.String(length=32), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "source IN ('slack', 'cli', 'api', 'scheduler')",
            name=op.f("ck_pending_confirmations_source"),
        ),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_pending_confirmations")),
    )
    op.create_index("ix_pending_confirmations_expires_at", "pending_confirmations", ["expires_at"])
    op.create_table(
        "slack_request_keys",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_slack_request_keys")),
    )
    op.create_index("ix_slack_request_keys_seen_at", "slack_request_keys", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_slack_request_keys_seen_at", table_name="slack_request_keys")
    op.drop_table("slack_request_keys")
    op.drop_index("ix_pending_confirmations_expires_at", table_name="pending_confirmations")
    op.drop_table("pending_confirmations")
