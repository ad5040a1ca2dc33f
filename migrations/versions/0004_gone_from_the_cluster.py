"""End reason "gone from the cluster": a fault someone removed outside meshbot, or a cluster
rebuilt under the database, is ended as such instead of staying "active" forever.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = "'expired', 'cleared by user', 'halted', 'guard tripped', 'failed', 'reverted after restart'"
_AFTER = f"{_BEFORE}, 'gone from the cluster'"


def _end_reasons(allowed: str) -> None:
    # SQLite cannot alter a CHECK constraint: batch mode rebuilds the table with the new one.
    with op.batch_alter_table("experiments") as batch:
        batch.drop_constraint(op.f("ck_experiments_end_reason"), type_="check")
        batch.create_check_constraint("end_reason", f"end_reason IS NULL OR end_reason IN ({allowed})")


def upgrade() -> None:
    _end_reasons(_AFTER)


def downgrade() -> None:
    op.execute("UPDATE experiments SET end_reason = 'failed' WHERE end_reason = 'gone from the cluster'")
    _end_reasons(_BEFORE)
