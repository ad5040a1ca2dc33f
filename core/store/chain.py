"""The audit hash chain: a row's canonical form, its hash, and the walk that checks them.

Rows are chained with HMAC-SHA256 under MESHBOT_AUDIT_KEY, a secret kept outside the database,
so someone who can write the database cannot recompute the chain after changing it. Without a
key (development, or rows written before one was configured) a row's hash is plain SHA-256,
which shows accidental damage only. The chain head records the first keyed row; from there on
every row is keyed with the same key, and appending without it is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.store.errors import AuditKeyError, ChainError
from core.store.models import FINGERPRINT_LENGTH, AuditChain, AuditEvent

GENESIS_HASH = "0" * 64
CHAIN_HEAD_ID = 1
AUDIT_KEY_SETTING = "MESHBOT_AUDIT_KEY"
MIN_KEY_BYTES = 32
# Where a Store puts its key on every session it opens (Session.info), so the many callers of
# record_event need not thread the key through.
SESSION_KEY_INFO = "meshbot_audit_key"
PRUNE_VERB = "audit prune"

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


class AuditKey:
    """The chain's HMAC key. Shows only its fingerprint: never logged, printed or stored."""

    __slots__ = ("_secret", "fingerprint")

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_KEY_BYTES:
            raise AuditKeyError(
                f"{AUDIT_KEY_SETTING} must be at least {MIN_KEY_BYTES} bytes, this one has "
                f"{len(secret)}: generate one with `openssl rand -hex 32`"
            )
        self._secret = secret
        # A fingerprint says which key without saying the key: an HMAC of a fixed label, cut short.
        self.fingerprint = hmac.new(secret, b"meshbot audit key fingerprint", hashlib.sha256).hexdigest()[
            :FINGERPRINT_LENGTH
        ]

    @classmethod
    def from_setting(cls, value: SecretStr | str | None) -> AuditKey | None:
        """The key from its setting (None when unset or empty); AuditKeyError when too short."""
        if value is None:
            return None
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        return cls(raw.encode("utf-8")) if raw else None

    def mac(self, data: bytes) -> str:
        return hmac.new(self._secret, data, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return f"AuditKey(fingerprint={self.fingerprint})"


def _canonical(row: Mapping[Any, Any]) -> bytes:
    content = {name: row[name] for name in HASHED_COLUMNS}
    content["occurred_at"] = canonical_time(content["occurred_at"])
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return encoded.encode("utf-8")


def row_hash(row: Mapping[Any, Any], key: AuditKey | None = None) -> str:
    """HMAC-SHA256 under ``key`` (plain SHA-256 without one) over the row's hashed columns,
    which include the previous row's hash."""
    data = _canonical(row)
    return key.mac(data) if key is not None else hashlib.sha256(data).hexdigest()


def session_key(session: Session) -> AuditKey | None:
    key = session.info.get(SESSION_KEY_INFO)
    return key if isinstance(key, AuditKey) else None


def appending_key(head: AuditChain, key: AuditKey | None) -> AuditKey | None:
    """The key new rows are hashed with, after checking it is the chain's; marks the first keyed
    row on the (locked) head when a key is used for the first time."""
    _check_key(head, key)
    if key is not None and head.keyed_from_event_id is None:
        head.keyed_from_event_id = head.last_event_id + 1
        head.key_fingerprint = key.fingerprint
    return key


def _check_key(head: AuditChain, key: AuditKey | None) -> None:
    if head.keyed_from_event_id is None:
        return
    if key is None:
        raise ChainError(
            f"the audit chain is keyed from row {head.keyed_from_event_id} (key fingerprint "
            f"{head.key_fingerprint}) and {AUDIT_KEY_SETTING} is not set: set it from the Secret"
        )
    if key.fingerprint != head.key_fingerprint:
        raise ChainError(
            f"{AUDIT_KEY_SETTING} (fingerprint {key.fingerprint}) is not the key the audit chain is "
            f"keyed with (fingerprint {head.key_fingerprint}); use the key from the Secret"
        )


# What a prune records about the anchor it leaves, in its own (chained) audit row; the form
# "(ids a..b)" is what prunes wrote before the hash was recorded.
_ANCHOR_NAMED = re.compile(r"anchor (\d+):([0-9a-f]{64})$")
_LEGACY_SPAN = re.compile(r"\(ids \d+\.\.(\d+)\)$")


def anchor_note(anchor_id: int, anchor_hash: str) -> str:
    return f"anchor {anchor_id}:{anchor_hash}"


def _anchor_named_by(row: Mapping[Any, Any]) -> tuple[int, str | None] | None:
    message = row["message"] or ""
    if row["verb"] != PRUNE_VERB or row["outcome"] != "ok" or not message.startswith("pruned "):
        return None
    named = _ANCHOR_NAMED.search(message)
    if named:
        return int(named.group(1)), named.group(2)
    legacy = _LEGACY_SPAN.search(message)
    return (int(legacy.group(1)), None) if legacy else None


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
    # The first row hashed with the key (None: no row is keyed), and that key's fingerprint.
    keyed_from: int | None = None
    key_fingerprint: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken is None

    @property
    def unkeyed_span(self) -> tuple[int, int] | None:
        """The rows checked only with plain SHA-256: evidence of accidents, not of tampering."""
        if self.first_id is None or self.last_id is None:
            return None
        last_unkeyed = self.last_id if self.keyed_from is None else min(self.last_id, self.keyed_from - 1)
        return (self.first_id, last_unkeyed) if last_unkeyed >= self.first_id else None


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


def verify_chain(
    *, session: Session, through_id: int | None = None, key: AuditKey | None = None
) -> ChainReport:
    """Walk the chain from the prune anchor and report the first row that breaks it.

    A row breaks it when its content no longer matches its hash (altered), when it does not link
    to the row before (altered or reordered), or when ids jump (rows deleted). Rows from the head's
    first keyed row on are checked with ``key`` (default: the session's store's key); a chain
    keyed with another key, or keyed while no key is given, raises ChainError. With
    ``through_id`` only the rows up to it are walked; otherwise the last row must also be the
    one the chain head recorded (rows deleted from the end). Either way the anchor must be the
    one the last recorded prune left (rows deleted from the start). Give it a snapshot session
    (``Store.read(snapshot=True)``) so concurrent appends and prunes do not look like gaps.
    """
    key = key if key is not None else session_key(session)
    head = session.get(AuditChain, CHAIN_HEAD_ID, populate_existing=True)
    if head is None:
        return ChainReport(0, None, None, BrokenLink(0, None, "the chain head row is missing"))
    _check_key(head, key)
    keyed_from = head.keyed_from_event_id
    expected_id = head.anchor_event_id + 1
    expected_prev = head.anchor_hash
    count = 0
    first_id: int | None = None
    last: Mapping[Any, Any] | None = None
    last_prune: tuple[int, tuple[int, str | None]] | None = None

    def report(broken: BrokenLink | None) -> ChainReport:
        last_id = last["id"] if last else None
        return ChainReport(count, first_id, last_id, broken, keyed_from, head.key_fingerprint)

    for row in _rows(session, head.anchor_event_id, through_id):
        row_key = key if keyed_from is not None and row["id"] >= keyed_from else None
        problem = _link_problem(row, expected_id, expected_prev, last, row_key)
        if problem is not None:
            return report(BrokenLink(row["id"], row["occurred_at"], problem))
        named = _anchor_named_by(row)
        if named is not None:
            last_prune = (row["id"], named)
        count += 1
        first_id = row["id"] if first_id is None else first_id
        last = row
        expected_id = row["id"] + 1
        expected_prev = row["hash"]
    if through_id is None:
        tail = _tail_problem(head, last)
        if tail is not None:
            event_id, problem = tail
            when = last["occurred_at"] if last and last["id"] == event_id else None
            return report(BrokenLink(event_id, when, problem))
    else:
        # The walk stopped early, so look the last prune up instead (prune's case: a moved anchor
        # must not be made to look legitimate by the row this prune is about to write).
        last_prune, forged = _last_recorded_prune(session, head, key)
        if forged is not None:
            return report(BrokenLink(forged, None, "this recorded prune does not match its hash"))
    anchor = _anchor_problem(head, last_prune)
    if anchor is not None:
        return report(BrokenLink(head.anchor_event_id + 1, None, anchor))
    return report(None)


def _last_recorded_prune(
    session: Session, head: AuditChain, key: AuditKey | None
) -> tuple[tuple[int, tuple[int, str | None]] | None, int | None]:
    """The newest prune row naming an anchor (and None), or the id of one whose hash fails."""
    columns = [getattr(AuditEvent, name) for name in (*HASHED_COLUMNS, "hash")]
    query = (
        select(*columns)
        .where(
            AuditEvent.id > head.anchor_event_id,
            AuditEvent.verb == PRUNE_VERB,
            AuditEvent.outcome == "ok",
        )
        .order_by(AuditEvent.id.desc())
    )
    for row in session.execute(query).mappings():
        named = _anchor_named_by(row)
        if named is None:
            continue
        keyed = head.keyed_from_event_id is not None and row["id"] >= head.keyed_from_event_id
        if not hmac.compare_digest(row_hash(row, key if keyed else None), row["hash"]):
            return None, row["id"]
        return (row["id"], named), None
    return None, None


def _anchor_problem(head: AuditChain, last_prune: tuple[int, tuple[int, str | None]] | None) -> str | None:
    """The anchor may only be where the last recorded prune left it: a prune's row names it and
    is chained (keyed) like any other, so deleting rows from the start and moving the anchor by
    hand leaves no prune to explain it."""
    anchor_id, anchor_hash = head.anchor_event_id, head.anchor_hash
    if last_prune is None:
        if anchor_id == 0 and anchor_hash == GENESIS_HASH:
            return None
        return (
            f"the chain starts after row {anchor_id} (the prune anchor), but no recorded prune "
            "left it there (rows deleted and the anchor moved by hand?)"
        )
    prune_row, (named_id, named_hash) = last_prune
    if named_id != anchor_id or (named_hash is not None and named_hash != anchor_hash):
        return (
            f"the prune anchor is row {anchor_id}, but the last recorded prune (row {prune_row}) "
            f"left it at row {named_id} (anchor moved by hand?)"
        )
    return None


def _link_problem(
    row: Mapping[Any, Any],
    expected_id: int,
    expected_prev: str,
    last: Mapping[Any, Any] | None,
    key: AuditKey | None,
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
    if not hmac.compare_digest(row_hash(row, key), row["hash"]):
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


@dataclass(frozen=True)
class ChainHead:
    """The chain's newest row as the head records it: what ``meshbot audit head`` exports."""

    last_id: int
    last_hash: str
    key_fingerprint: str | None

    def __str__(self) -> str:
        scheme = f"key={self.key_fingerprint}" if self.key_fingerprint else "unkeyed"
        return f"{self.last_id}:{self.last_hash} {scheme}"


_EXPORTED = re.compile(r"^(\d+):([0-9a-f]{64})(?:\s+(?:key=([0-9a-f]{16})|unkeyed))?$")


def parse_head(text: str) -> ChainHead | None:
    """``<id>:<hash>``, optionally followed by ``key=<fingerprint>`` or ``unkeyed`` as
    ``meshbot audit head`` prints it; None when it is not that."""
    match = _EXPORTED.match(text.strip())
    if match is None:
        return None
    return ChainHead(int(match.group(1)), match.group(2), match.group(3))


def read_head(session: Session) -> ChainHead:
    head = session.get(AuditChain, CHAIN_HEAD_ID, populate_existing=True)
    if head is None:
        raise ChainError("the audit chain head row is missing: the database was altered outside meshbot")
    return ChainHead(head.last_event_id, head.last_hash, head.key_fingerprint)


def exported_head_problem(session: Session, report: ChainReport, exported: ChainHead) -> str | None:
    """Why the chain (already walked into ``report``) does not contain the exported head, if it
    does not: the row gone from the end, its hash changed, or the chain keyed with another key.

    A row at or before the anchor was pruned; the anchor itself was checked against a recorded
    prune by the walk, so only the anchor's own hash can still be compared.
    """
    if exported.key_fingerprint and exported.key_fingerprint != report.key_fingerprint:
        now = f"key fingerprint {report.key_fingerprint}" if report.key_fingerprint else "no key"
        return (
            f"the exported head was keyed with key fingerprint {exported.key_fingerprint}, the chain "
            f"now records {now} (chain rewritten?)"
        )
    head = session.get(AuditChain, CHAIN_HEAD_ID)
    assert head is not None, "verify_chain reported on this head"
    if exported.last_id <= head.anchor_event_id:
        if exported.last_id == head.anchor_event_id and exported.last_hash != head.anchor_hash:
            return (
                f"row {exported.last_id} (the prune anchor) does not have the exported hash "
                "(chain rewritten?)"
            )
        return None
    last_id = report.last_id if report.last_id is not None else head.anchor_event_id
    if exported.last_id > last_id:
        return (
            f"row {exported.last_id} of the exported head is missing: the chain ends at row {last_id} "
            "(rows cut from the end?)"
        )
    stored = session.scalar(select(AuditEvent.hash).where(AuditEvent.id == exported.last_id))
    if stored is None or not hmac.compare_digest(stored, exported.last_hash):
        return f"row {exported.last_id} does not have the exported hash (row changed or chain rewritten)"
    return None
