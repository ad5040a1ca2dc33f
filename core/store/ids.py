"""Short ids people can type in chat (``exp-7f3a``), unique per table."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

# Four hex digits while the space is sparse; a collision streak means it is filling up, so grow.
_SHORT_DIGITS = 4
_ATTEMPTS_PER_LENGTH = 8


def new_short_id(session: Session, prefix: str, id_column: InstrumentedAttribute[Any]) -> str:
    """A fresh ``{prefix}-xxxx`` not yet in ``id_column`` (the primary key catches any race)."""
    digits = _SHORT_DIGITS
    while True:
        for _ in range(_ATTEMPTS_PER_LENGTH):
            candidate = f"{prefix}-{secrets.token_hex(digits // 2 + digits % 2)[:digits]}"
            if session.scalar(select(id_column).where(id_column == candidate)) is None:
                return candidate
        digits += 2
