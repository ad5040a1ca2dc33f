"""Slack deliveries already taken, shared by every replica: a retry (X-Slack-Retry-Num) may land
on another replica than the first delivery and must still not run again."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import CursorResult, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.store.models import REQUEST_KEY_LENGTH, SlackRequestKey


def claim_request_key(*, session: Session, key: str, now: datetime, ttl: timedelta) -> bool:
    """True for the first claim of ``key`` within ``ttl``; False when some replica claimed it already.

    Keys older than ``ttl`` are forgotten first, which also keeps the table small. The insert is
    ``ON CONFLICT DO NOTHING``: a duplicate neither raises nor aborts the transaction, and of two
    replicas claiming at once the second waits for the first to commit and then gets False.
    """
    now = now.astimezone(UTC)
    prune_request_keys(session=session, before=now - ttl)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(SlackRequestKey)
        .values(key=_fit(key), seen_at=now)
        .on_conflict_do_nothing(index_elements=[SlackRequestKey.key])
        .returning(SlackRequestKey.key)
    )
    return session.execute(statement).scalar_one_or_none() is not None


def prune_request_keys(*, session: Session, before: datetime) -> int:
    """Forget the keys seen before ``before``; how many went."""
    result = session.execute(delete(SlackRequestKey).where(SlackRequestKey.seen_at < before.astimezone(UTC)))
    assert isinstance(result, CursorResult), "a DELETE statement returns a cursor result"
    return int(result.rowcount)


def _fit(key: str) -> str:
    # Event and trigger ids are short; anything longer is hashed so it fits the column and
    # still identifies the same delivery.
    if len(key) <= REQUEST_KEY_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
