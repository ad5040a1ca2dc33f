"""Open confirmation questions: a risky command held until its asker (or a second person)
answers, shared by every replica through the database.

Each question is answered at most once, wherever the press lands: taking one is a single
``DELETE ... RETURNING`` of its row, so of two presses (or a press and a sweeper, or two
sweepers) exactly one gets the row and the other finds nothing. On PostgreSQL the loser's DELETE
waits on the winner's row lock and then sees the row gone; SQLite writers queue on BEGIN IMMEDIATE.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from core.store.models import PendingConfirmation
from core.values import Actor, Source

_COLUMNS = tuple(column.key for column in PendingConfirmation.__table__.columns)


def hold_confirmation(
    *,
    session: Session,
    token: str,
    command: str,
    actor: Actor,
    source: Source,
    channel: str | None,
    question: dict[str, Any],
    expires_at: datetime,
    response_url: str | None = None,
    message_ts: str | None = None,
    now: datetime | None = None,
) -> PendingConfirmation:
    """Hold ``command`` under ``token`` until ``expires_at``."""
    held = PendingConfirmation(
        token=token,
        command=command,
        actor_team=actor.team_id,
        actor_user=actor.user_id,
        actor_name=actor.display_name,
        source=Source(source).value,
        channel=channel,
        question=dict(question),
        response_url=response_url,
        message_ts=message_ts,
        expires_at=expires_at.astimezone(UTC),
        created_at=(now or datetime.now(UTC)).astimezone(UTC),
    )
    session.add(held)
    session.flush()
    return held


def get_confirmation(*, session: Session, token: str) -> PendingConfirmation | None:
    """The open question, left open; None when unknown or already taken."""
    return session.get(PendingConfirmation, token)


def take_confirmation(*, session: Session, token: str) -> PendingConfirmation | None:
    """Remove and return the open question; None when unknown or already taken by someone else.

    An expired question is returned too: whoever took it withdraws it.
    """
    row = session.execute(
        delete(PendingConfirmation).where(PendingConfirmation.token == token).returning(*_table_columns())
    ).one_or_none()
    return None if row is None else PendingConfirmation(**row._asdict())


def put_back_confirmation(*, session: Session, confirmation: PendingConfirmation) -> None:
    """Open a taken question again, as it was (same token, same expiry): an answer that did not
    count, say an approver the policy denies, must not use it up."""
    values = {key: getattr(confirmation, key) for key in _COLUMNS}
    session.execute(insert(PendingConfirmation).values(**values))


def set_confirmation_message(*, session: Session, token: str, message_ts: str) -> bool:
    """Remember the channel message showing the question; False when it was answered meanwhile."""
    result = session.execute(
        update(PendingConfirmation)
        .where(PendingConfirmation.token == token)
        .values(message_ts=message_ts)
        .returning(PendingConfirmation.token)
    )
    return result.scalar_one_or_none() is not None


def list_expired_confirmations(*, session: Session, now: datetime) -> list[PendingConfirmation]:
    """Questions past their time, oldest first, left in place."""
    statement = (
        select(PendingConfirmation)
        .where(PendingConfirmation.expires_at <= now.astimezone(UTC))
        .order_by(PendingConfirmation.expires_at, PendingConfirmation.token)
    )
    return list(session.scalars(statement))


def take_expired_confirmations(*, session: Session, now: datetime) -> list[PendingConfirmation]:
    """Remove and return the questions past their time, oldest first. Sweepers on several replicas
    may run at once: each question is returned to exactly one of them."""
    rows = session.execute(
        delete(PendingConfirmation)
        .where(PendingConfirmation.expires_at <= now.astimezone(UTC))
        .returning(*_table_columns())
    ).all()
    taken = [PendingConfirmation(**row._asdict()) for row in rows]
    return sorted(taken, key=lambda held: (held.expires_at, held.token))


def count_confirmations(*, session: Session) -> int:
    return session.scalar(select(func.count()).select_from(PendingConfirmation)) or 0


def _table_columns() -> list[Any]:
    # Plain columns, not the entity: the deleted row comes back as values, and a fresh transient
    # object is built from them, so nothing in the session believes the row still exists.
    return [PendingConfirmation.__table__.c[key] for key in _COLUMNS]
