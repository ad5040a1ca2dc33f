"""The audit log's repository: append (one or a batch), query, and prune. No update, no delete."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, Result, String, delete, insert, select, text, tuple_
from sqlalchemy.orm import Session

from core.store.chain import (
    HASHED_COLUMNS,
    PRUNE_VERB,
    AuditKey,
    anchor_note,
    appending_key,
    canonical_time,
    lock_chain_head,
    row_hash,
    session_key,
    verify_chain,
)
from core.store.errors import ChainError, FilterError
from core.store.filters import AuditQuery
from core.store.models import AuditChain, AuditEvent, AuditPruneGrant
from core.values import Actor, Outcome, Source, Target

# The PostgreSQL trigger lets a DELETE through only while this transaction-local setting is on.
PRUNE_SETTING = "meshbot.audit_prune"


@dataclass(frozen=True)
class NewAuditEvent:
    """An event to append; the store adds id, time (unless given), and the chain hashes."""

    actor: Actor
    source: Source
    command: str
    verb: str
    outcome: Outcome
    message: str = ""
    channel: str | None = None
    target: Target = field(default_factory=Target)
    experiment_id: str | None = None
    request_id: str | None = None
    occurred_at: datetime | None = None


def record_event(
    *,
    session: Session,
    actor: Actor,
    source: Source,
    command: str,
    verb: str,
    outcome: Outcome,
    message: str = "",
    channel: str | None = None,
    target: Target | None = None,
    experiment_id: str | None = None,
    request_id: str | None = None,
    occurred_at: datetime | None = None,
) -> AuditEvent:
    """Append one event to the chain and return it (flushed; committed with the session)."""
    new = NewAuditEvent(
        actor=actor,
        source=source,
        command=command,
        verb=verb,
        outcome=outcome,
        message=message,
        channel=channel,
        target=target or Target(),
        experiment_id=experiment_id,
        request_id=request_id,
        occurred_at=occurred_at,
    )
    head = lock_chain_head(session)
    (row,) = _chain_rows(head, [new], datetime.now(UTC), appending_key(head, session_key(session)))
    event = AuditEvent(**row)
    session.add(event)
    session.flush()
    return event


def record_events(*, session: Session, events: Sequence[NewAuditEvent]) -> range:
    """Append a batch under one chain lock and one multi-row INSERT; returns the ids given."""
    if not events:
        return range(0)
    head = lock_chain_head(session)
    first_id = head.last_event_id + 1
    rows = _chain_rows(head, events, datetime.now(UTC), appending_key(head, session_key(session)))
    session.execute(insert(AuditEvent), rows)
    return range(first_id, head.last_event_id + 1)


def _chain_rows(
    head: AuditChain, events: Sequence[NewAuditEvent], now: datetime, key: AuditKey | None
) -> list[dict[str, Any]]:
    """Rows ready to insert, hashed in order; advances the (locked) head past them."""
    rows: list[dict[str, Any]] = []
    prev_hash = head.last_hash
    next_id = head.last_event_id + 1
    for new in events:
        row = _columns(new, now)
        row["id"] = next_id
        row["prev_hash"] = prev_hash
        row["hash"] = prev_hash = row_hash(row, key)
        rows.append(row)
        next_id += 1
    head.last_event_id = next_id - 1
    head.last_hash = prev_hash
    return rows


_COLUMN_LENGTHS: dict[str, int] = {
    column.name: column.type.length
    for column in AuditEvent.__table__.columns
    if isinstance(column.type, String) and column.type.length
}


# Free-text columns are unbounded in the schema; what is stored of them is bounded here, before
# hashing, so the chain covers exactly what was kept.
TEXT_KEPT = 4096
_BOUNDED_TEXT = frozenset({"command", "message"})


def _clean(name: str, value: str | None) -> str | None:
    """What is stored (and hashed): NUL removed (PostgreSQL refuses it), clipped to the column.

    Clipping rather than refusing: a malformed command with an absurd name must still be recorded.
    """
    if value is None:
        return None
    value = value.replace("\x00", "\ufffd")
    limit = _COLUMN_LENGTHS.get(name)
    if limit:
        return value[:limit]
    if name in _BOUNDED_TEXT and len(value) > TEXT_KEPT:
        # A 1 MB command would be kept (and re-read by every audit query) whole; the start is what
        # a reader needs, and the note keeps a cut row from passing for the command as typed.
        return value[:TEXT_KEPT] + f" … [cut: {len(value)} characters, first {TEXT_KEPT} kept]"
    return value


def _columns(new: NewAuditEvent, now: datetime) -> dict[str, Any]:
    occurred_at = (new.occurred_at or now).astimezone(UTC)
    raw: dict[str, str | None] = {
        "actor_team_id": new.actor.team_id,
        "actor_user_id": new.actor.user_id,
        "actor_name": new.actor.display_name,
        "channel": new.channel,
        "source": Source(new.source).value,
        "command": new.command,
        "verb": new.verb,
        "cluster": new.target.cluster,
        "namespace": new.target.namespace,
        "service": new.target.service,
        "outcome": Outcome(new.outcome).value,
        "message": new.message,
        "experiment_id": new.experiment_id,
        "request_id": new.request_id,
    }
    row: dict[str, Any] = {name: _clean(name, value) for name, value in raw.items()}
    row["occurred_at"] = occurred_at
    return row


@dataclass(frozen=True)
class AuditPage:
    """One page of events, newest first; ``next_before`` continues it (None on the last page)."""

    events: list[AuditEvent]
    next_before: int | None


def query_events(*, session: Session, query: AuditQuery) -> AuditPage:
    """The one query behind chat, CLI and HTTP: filters AND-ed, newest first, keyset-paginated."""
    statement = select(AuditEvent)
    exact = {
        AuditEvent.verb: query.verb,
        AuditEvent.service: query.service,
        AuditEvent.namespace: query.namespace,
        AuditEvent.cluster: query.cluster,
        AuditEvent.channel: query.channel,
        AuditEvent.source: query.source,
        AuditEvent.outcome: query.outcome,
        AuditEvent.experiment_id: query.experiment,
    }
    for column, wanted in exact.items():
        if wanted is not None:
            statement = statement.where(column == wanted)
    if query.actor is not None:
        statement = statement.where(
            (AuditEvent.actor_user_id == query.actor) | (AuditEvent.actor_name == query.actor)
        )
    if query.text is not None:
        statement = statement.where(AuditEvent.command.icontains(query.text, autoescape=True))
    if query.since is not None:
        statement = statement.where(AuditEvent.occurred_at >= query.since)
    if query.until is not None:
        statement = statement.where(AuditEvent.occurred_at < query.until)
    if query.before is not None:
        cursor_time = session.scalar(select(AuditEvent.occurred_at).where(AuditEvent.id == query.before))
        if cursor_time is None:
            raise FilterError(
                f"before={query.before}: there is no audit event {query.before} "
                "(give the id of an event listed, or leave before= out)"
            )
        statement = statement.where(
            tuple_(AuditEvent.occurred_at, AuditEvent.id) < tuple_(cursor_time, query.before)
        )
    statement = statement.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
    events = list(session.scalars(statement.limit(query.limit + 1)))
    more = len(events) > query.limit
    events = events[: query.limit]
    return AuditPage(events=events, next_before=events[-1].id if more else None)


# What a reader gets: the hashed columns (occurred_at shown as `time`) and the row's own hash.
EVENT_FIELDS: tuple[str, ...] = (
    "id",
    "time",
    *(column for column in HASHED_COLUMNS if column not in ("id", "occurred_at")),
    "hash",
)


def event_to_dict(event: AuditEvent) -> dict[str, Any]:
    """An event as plain JSON-ready values (keys EVENT_FIELDS), for CLI output and the HTTP API."""
    return {
        field: canonical_time(event.occurred_at) if field == "time" else getattr(event, field)
        for field in EVENT_FIELDS
    }


@dataclass(frozen=True)
class PruneResult:
    deleted: int
    cutoff: datetime
    first_deleted_id: int | None
    last_deleted_id: int | None
    event: AuditEvent


def prune_events(
    *,
    session: Session,
    older_than: timedelta,
    actor: Actor,
    source: Source,
    command: str,
    channel: str | None = None,
    request_id: str | None = None,
    now: datetime | None = None,
) -> PruneResult:
    """Delete the oldest events, the one way rows leave; records itself in the same transaction.

    Only a prefix of the chain goes (rows up to the first one newer than the cutoff), and the
    chain head keeps the last deleted row's hash as the anchor the new first row must link to,
    so ``verify`` stays meaningful; the prune's own row names that anchor, which is what lets
    ``verify`` tell this move of the anchor from one made by hand. A broken prefix, or an anchor
    no recorded prune explains, is not pruned: that would destroy the evidence.
    """
    if older_than <= timedelta(0):
        raise FilterError("prune needs a positive age, e.g. --older-than 400d")
    now = (now or datetime.now(UTC)).astimezone(UTC)
    cutoff = now - older_than
    head = lock_chain_head(session)
    first_kept = session.scalar(
        select(AuditEvent.id)
        .where(AuditEvent.id > head.anchor_event_id, AuditEvent.occurred_at >= cutoff)
        .order_by(AuditEvent.id)
        .limit(1)
    )
    last_deleted = head.last_event_id if first_kept is None else first_kept - 1
    first_deleted = head.anchor_event_id + 1
    deleted = 0
    anchor = ""
    if last_deleted >= first_deleted:
        report = verify_chain(session=session, through_id=last_deleted)
        if report.broken is not None:
            raise ChainError(
                f"prune refused: the audit chain is broken at {report.broken}; "
                "pruning would destroy the evidence (see `meshbot audit verify`)"
            )
        anchor_hash = session.scalar(select(AuditEvent.hash).where(AuditEvent.id == last_deleted))
        if anchor_hash is None:
            raise ChainError(f"prune refused: audit event {last_deleted} is missing")
        deleted = _delete_span(session, first_deleted, last_deleted)
        head.anchor_event_id = last_deleted
        head.anchor_hash = anchor_hash
        # Flushed now so the grant's span no longer starts right after the anchor.
        session.flush()
        anchor = f", {anchor_note(last_deleted, anchor_hash)}"
    span = f" (ids {first_deleted}..{last_deleted}){anchor}" if deleted else ""
    event = record_event(
        session=session,
        actor=actor,
        source=source,
        command=command,
        verb=PRUNE_VERB,
        outcome=Outcome.OK,
        message=f"pruned {deleted} events older than {canonical_time(cutoff)}{span}",
        channel=channel,
        request_id=request_id,
        occurred_at=now,
    )
    return PruneResult(
        deleted=deleted,
        cutoff=cutoff,
        first_deleted_id=first_deleted if deleted else None,
        last_deleted_id=last_deleted if deleted else None,
        event=event,
    )


def _delete_span(session: Session, first_id: int, last_id: int) -> int:
    """DELETE past the append-only trigger with a grant naming exactly this span, which the
    trigger honours only while the span starts right after the anchor (before it moves)."""
    statement = delete(AuditEvent).where(AuditEvent.id <= last_id)
    statement = statement.execution_options(synchronize_session=False)
    if session.get_bind().dialect.name == "postgresql":
        span = f"{first_id}..{last_id}"
        session.execute(text("SELECT set_config(:name, :span, true)"), {"name": PRUNE_SETTING, "span": span})
        deleted = _rowcount(session.execute(statement))
        session.execute(text("SELECT set_config(:name, '', true)"), {"name": PRUNE_SETTING})
    else:
        token = secrets.token_hex(8)
        session.add(AuditPruneGrant(token=token, first_id=first_id, last_id=last_id))
        session.flush()
        deleted = _rowcount(session.execute(statement))
        session.execute(delete(AuditPruneGrant).where(AuditPruneGrant.token == token))
    return deleted


def _rowcount(result: Result[Any]) -> int:
    assert isinstance(result, CursorResult), "a DELETE statement returns a cursor result"
    return int(result.rowcount)
