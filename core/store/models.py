"""SQLAlchemy models of the experiment store and the audit log; the migrations mirror them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.values import EndReason, ExperimentKind, ExperimentState, Outcome, Source

# Deterministic constraint names, so migrations written by hand and the models agree on both
# databases and alembic's drift check compares like with like.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LENGTH = 32
USER_ID_LENGTH = 64
TEAM_ID_LENGTH = 32
NAME_LENGTH = 255
CHANNEL_LENGTH = 64
HASH_LENGTH = 64
FINGERPRINT_LENGTH = 16
REQUEST_KEY_LENGTH = 255


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database.

    SQLite has no time zones: the value is stored as naive UTC and given back as aware UTC, so the
    audit hash computed before insert matches what a later read recomputes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store only accepts aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _one_of(column: str, values: type[Any]) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class AuditEvent(Base):
    """One command or automatic action; append-only, each row hash-chained to the one before."""

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint(_one_of("source", Source), name="source"),
        CheckConstraint(_one_of("outcome", Outcome), name="outcome"),
        # Each index leads with what a query filters on and ends with the listing order, so a
        # filtered, newest-first page is one backward index range scan.
        Index("ix_audit_events_occurred_at", "occurred_at", "id"),
        Index("ix_audit_events_service", "service", "occurred_at", "id"),
        Index("ix_audit_events_namespace", "namespace", "occurred_at", "id"),
        Index("ix_audit_events_actor", "actor_user_id", "occurred_at", "id"),
        Index("ix_audit_events_experiment", "experiment_id"),
    )

    # Chain position, assigned by the appender under the chain lock: gapless, so a missing row
    # shows as a gap, and known before insert, so a batch can be hashed before it is written.
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_team_id: Mapped[str | None] = mapped_column(String(TEAM_ID_LENGTH))
    actor_user_id: Mapped[str] = mapped_column(String(USER_ID_LENGTH))
    actor_name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    channel: Mapped[str | None] = mapped_column(String(CHANNEL_LENGTH))
    source: Mapped[str] = mapped_column(String(16))
    command: Mapped[str] = mapped_column(Text)
    verb: Mapped[str] = mapped_column(String(ID_LENGTH))
    cluster: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    namespace: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    service: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    outcome: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    # Not a foreign key: a refused command may name an experiment that never existed, and it must
    # still be recorded as typed.
    experiment_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    request_id: Mapped[str | None] = mapped_column(String(USER_ID_LENGTH))
    prev_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    hash: Mapped[str] = mapped_column(String(HASH_LENGTH))


class AuditChain(Base):
    """The single chain-head row: the last appended event, and the anchor left by pruning.

    Appenders lock it (``FOR UPDATE``; SQLite serializes writers anyway), which orders appends.
    """

    __tablename__ = "audit_chain"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_event_id: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    # The last pruned row's id and hash: the first remaining row must link to them.
    anchor_event_id: Mapped[int] = mapped_column(BigInteger)
    anchor_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    # The first row hashed with MESHBOT_AUDIT_KEY (HMAC) and that key's fingerprint; NULL while
    # no key was ever configured. Rows before it are plain SHA-256, and once set it never moves:
    # the first keyed row's HMAC covers the plain rows before it through its prev_hash.
    keyed_from_event_id: Mapped[int | None] = mapped_column(BigInteger)
    key_fingerprint: Mapped[str | None] = mapped_column(String(FINGERPRINT_LENGTH))


class AuditPruneGrant(Base):
    """SQLite only: the DELETE trigger lets through rows first_id..last_id, and only while
    first_id is the row right after the chain's anchor.

    Prune inserts the grant, deletes, moves the anchor past last_id and removes the grant, all in
    one transaction: so a grant serves the one prune that wrote it, and a stray row (left behind,
    or written by hand) opens nothing once the anchor has moved or if it names any other span.
    PostgreSQL carries the same span in a transaction-local setting instead; the table exists
    there only so both schemas are the same.
    """

    __tablename__ = "audit_prune_grants"

    token: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    first_id: Mapped[int] = mapped_column(BigInteger)
    last_id: Mapped[int] = mapped_column(BigInteger)


class Experiment(Base):
    """One injected fault: what was asked, what it changed in which VirtualServices, its end."""

    __tablename__ = "experiments"
    __table_args__ = (
        CheckConstraint(_one_of("kind", ExperimentKind), name="kind"),
        CheckConstraint(_one_of("state", ExperimentState), name="state"),
        CheckConstraint(f"end_reason IS NULL OR {_one_of('end_reason', EndReason)}", name="end_reason"),
        Index("ix_experiments_state_expires_at", "state", "expires_at"),
        Index("ix_experiments_target", "namespace", "service", "state"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    cluster: Mapped[str] = mapped_column(String(NAME_LENGTH))
    namespace: Mapped[str] = mapped_column(String(NAME_LENGTH))
    service: Mapped[str] = mapped_column(String(NAME_LENGTH))
    # [{"namespace", "name", "inserted_routes": [...], "before": {...}}]: enough to undo exactly.
    virtual_services: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    duration_seconds: Mapped[int] = mapped_column(Integer)
    created_by_team: Mapped[str | None] = mapped_column(String(TEAM_ID_LENGTH))
    created_by_user: Mapped[str] = mapped_column(String(USER_ID_LENGTH))
    created_by_name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    channel: Mapped[str | None] = mapped_column(String(CHANNEL_LENGTH))
    thread_ts: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(32))
    ended_by_team: Mapped[str | None] = mapped_column(String(TEAM_ID_LENGTH))
    ended_by_user: Mapped[str | None] = mapped_column(String(USER_ID_LENGTH))
    ended_by_name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    detail: Mapped[str | None] = mapped_column(Text)
    # core.guards.Guard.to_json() each; NULL or [] when nothing guards it.
    guards: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)


class Schedule(Base):
    """A fault command to run later: once at ``run_at`` or on a cron expression in ``timezone``."""

    __tablename__ = "schedules"
    __table_args__ = (
        CheckConstraint("(run_at IS NULL) <> (cron IS NULL)", name="one_trigger"),
        Index("ix_schedules_channel", "channel"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    command: Mapped[str] = mapped_column(Text)
    run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cron: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    timezone: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(CHANNEL_LENGTH))
    created_by_team: Mapped[str | None] = mapped_column(String(TEAM_ID_LENGTH))
    created_by_user: Mapped[str] = mapped_column(String(USER_ID_LENGTH))
    created_by_name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reminder_lead_seconds: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean)


class ChannelBinding(Base):
    """A channel's default cluster and namespace, so commands there can leave them out."""

    __tablename__ = "channel_bindings"

    channel: Mapped[str] = mapped_column(String(CHANNEL_LENGTH), primary_key=True)
    cluster: Mapped[str] = mapped_column(String(NAME_LENGTH))
    namespace: Mapped[str] = mapped_column(String(NAME_LENGTH))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by_team: Mapped[str | None] = mapped_column(String(TEAM_ID_LENGTH))
    updated_by_user: Mapped[str] = mapped_column(String(USER_ID_LENGTH))
    updated_by_name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))


class PendingConfirmation(Base):
    """A command held until its asker confirms it (or a second person approves it), shared by
    every replica so a button press is answered wherever Slack delivers it.

    The token is the primary key: taking a question is one ``DELETE ... RETURNING`` of its row,
    so exactly one press (or sweeper) gets it.
    """

    __tablename__ = "pending_confirmations"
    __table_args__ = (
        CheckConstraint(_one_of("source", Source), name="source"),
        # The sweeper looks for questions past their time.
        Index("ix_pending_confirmations_expires_at", "expires_at"),
    )

    token: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    command: Mapped[str] = mapped_column(Text)
    actor_team: Mapped[str | None] = mapped_column(String(TEAM_ID_LENGTH))
    actor_user: Mapped[str] = mapped_column(String(USER_ID_LENGTH))
    actor_name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    source: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(CHANNEL_LENGTH))
    # {"text": ..., "two_person": ...}: what was asked, and whether a second person must approve.
    question: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Where the question was shown, so an answer or the sweeper can replace it: the slash
    # command's response_url (Slack keeps one valid for 30 minutes) or the channel message's ts.
    response_url: Mapped[str | None] = mapped_column(Text)
    message_ts: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SlackRequestKey(Base):
    """A Slack delivery already taken by some replica, kept for a while so a retry sent to any
    replica is acknowledged without running again."""

    __tablename__ = "slack_request_keys"
    __table_args__ = (Index("ix_slack_request_keys_seen_at", "seen_at"),)

    key: Mapped[str] = mapped_column(String(REQUEST_KEY_LENGTH), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
