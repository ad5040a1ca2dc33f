"""The audit hash chain: a row's canonical form, its hash, and the walk that checks them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.store.errors import ChainError
from core.store.models import AuditChain, AuditEvent

GENESIS_HASH = "0" * 64
CHAIN_HEAD_ID = 1

# Every column except the row's own hash. Adding a column means adding it here, in a new
# migration, and accepting that rows written before hash without it (absent keys stay absent).
HASHED_COLUMNS: tuple[str, ...] = (
    "id",
    "occurred_at",
    "actor_team_id",
    "actor_user_id",
    "actor_name",
    "channel",
    "source",
    "command",
    "verb",
    "cluster",
    "namespace",
    "service",
    "outcome",
    "message",
    "experiment_id",
    "request_id",
    "prev_hash",
)

_VERIFY_BATCH = 5_000


def canonical_time(moment: datetime) -> str:
    """UTC, microseconds, ``Z``: the one spelling of a time that both databases give back intact."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row_hash(row: Mapping[Any, Any]) -> str:
    """sha256 over the row's hashed columns (which include the previous row's hash)."""
    content = {name: row[name] for name in HASHED_COLUMNS}
    content["occurred_at"] = canonical_time(content["occurred_at"])
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def lock_chain_head(session: Session) -> AuditChain:
    """The chain head, locked until the transaction ends, so appends and prunes take turns."""
    head = session.scalars(
        select(AuditChain)
        .where(AuditChain.id == CHAIN_HEAD_ID)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if head is None:
        raise ChainError(
            "the audit chain head row is missing: the database was altered outside meshbot "
            "or not migrated (run `meshbot migrate`)"
        )
    return head


@dataclass(frozen=True)
class BrokenLink:
    """The first row where the chain does not hold, and why."""

    event_id: int
    occurred_at: datetime | None
    problem: str

    def __str__(self) -> str:
        when = canonical_time(self.occurred_at) if self.occurred_at else "time unknown"
        return f"row {self.event_id} ({when}): {self.problem}"


@dataclass(frozen=True)
class ChainReport:
    rows: int
    first_id: int | None
    last_id: int | None
    broken: BrokenLink | None

    @property
    def intact(self) -> bool:
        return self.broken is None


def _rows(session: Session, after_id: int, through_id: int | None) -> Iterator[Mapping[Any, Any]]:
    columns = [getattr(AuditEvent, name) for name in (*HASHED_COLUMNS, "hash")]
    while True:
        query = select(*columns).where(AuditEvent.id > after_id).order_by(AuditEvent.id)
        if through_id is not None:
            query = query.where(AuditEvent.id <= through_id)
        batch = session.execute(query.limit(_VERIFY_BATCH)).mappings().all()
        yield from batch
        if len(batch) < _VERIFY_BATCH:
            return
        after_id = batch[-1]["id"]


def verify_chain(*, session: Session, through_id: int | None = None) -> ChainReport:
    """Walk the chain from the prune anchor and report the first row that breaks it.

    A row breaks it when its content no longer matches its hash (altered), when it does not link
    to the row before (altered or reordered), or when ids jump (rows deleted). With
    ``through_id`` only the rows up to it are checked; otherwise the last row must also be the
    one the chain head recorded (rows deleted from the end). Give it a snapshot session
    (``Store.read(snapshot=True)``) so concurrent appends and prunes do not look like gaps.
    """
    head = session.get(AuditChain, CHAIN_HEAD_ID, populate_existing=True)
    if head is None:
        return ChainReport(0, None, None, BrokenLink(0, None, "the chain head row is missing"))
    expected_id = head.anchor_event_id + 1
    expected_prev = head.anchor_hash
    count = 0
    first_id: int | None = None
    last: Mapping[Any, Any] | None = None
    for row in _rows(session, head.anchor_event_id, through_id):
        problem = _link_problem(row, expected_id, expected_prev, last)
        if problem is not None:
            broken = BrokenLink(row["id"], row["occurred_at"], problem)
            return ChainReport(count, first_id, last["id"] if last else None, broken)
        count += 1
        first_id = row["id"] if first_id is None else first_id
        last = row
        expected_id = row["id"] + 1
        expected_prev = row["hash"]
    last_id = last["id"] if last else None
    if through_id is None:
        tail = _tail_problem(head, last)
        if tail is not None:
            event_id, problem = tail
            when = last["occurred_at"] if last and last["id"] == event_id else None
            return ChainReport(count, first_id, last_id, BrokenLink(event_id, when, problem))
    return ChainReport(count, first_id, last_id, None)


def _link_problem(
    row: Mapping[Any, Any], expected_id: int, expected_prev: str, last: Mapping[Any, Any] | None
) -> str | None:
    if row["id"] != expected_id:
        before = f"row {last['id']}" if last else "the prune anchor"
        missing = (
            f"row {expected_id} is missing"
            if row["id"] == expected_id + 1
            else f"rows {expected_id}..{row['id'] - 1} are missing"
        )
        return f"{missing} (deleted?): ids jump from {before} to {row['id']}"
    if row["prev_hash"] != expected_prev:
        before = f"row {last['id']}" if last else "the prune anchor"
        return f"its prev_hash does not match the hash of {before} (row replaced or chain rewritten)"
    if row_hash(row) != row["hash"]:
        return "its content does not match its hash (the row was altered after it was written)"
    return None


def _tail_problem(head: AuditChain, last: Mapping[Any, Any] | None) -> tuple[int, str] | None:
    """The last row must be the one the chain head recorded: rows gone from, or added at, the end."""
    last_id = last["id"] if last else head.anchor_event_id
    last_hash = last["hash"] if last else head.anchor_hash
    if last_id < head.last_event_id:
        gone = (
            f"row {head.last_event_id} is"
            if last_id + 1 == head.last_event_id
            else f"rows {last_id + 1}..{head.last_event_id} are"
        )
        return (
            last_id + 1,
            f"{gone} missing from the end (deleted?); the chain head records {head.last_event_id}",
        )
    if last_id > head.last_event_id:
        return (
            head.last_event_id + 1,
            f"rows {head.last_event_id + 1}..{last_id} lie beyond the chain head (written outside meshbot?)",
        )
    if last_hash != head.last_hash:
        return last_id, "its hash is not the one the chain head recorded (row or chain head altered)"
    return None
