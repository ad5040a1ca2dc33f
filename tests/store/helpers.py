"""Small builders the store tests share."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from core.store import Actor, Outcome, Source, Store, Target, record_event

try:
    # tests/ is on sys.path while it is not a package (pytest's default rootdir-relative import) ...
    import support.postgres as postgres
except ModuleNotFoundError:
    # ... and the repository root is, once tests/ becomes one or pytest's pythonpath names it.
    import tests.support.postgres as postgres  # type: ignore[no-redef]

__all__ = ["ALICE", "BOB", "NOW", "add_event", "drop_append_only_triggers", "postgres", "tamper"]

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ALICE = Actor(user_id="U0ALICE", team_id="T0001", display_name="alice")
BOB = Actor(user_id="U0BOB", team_id="T0001", display_name="bob")


def add_event(store: Store, *, at: datetime | None = None, **fields: object) -> int:
    """Append one event with sensible defaults; returns its id."""
    values: dict[str, object] = {
        "actor": ALICE,
        "source": Source.SLACK,
        "command": "/mesh fault delay web-svc 2s",
        "verb": "fault",
        "outcome": Outcome.OK,
        "target": Target("prod", "shop", "web-svc"),
        "occurred_at": at,
    }
    values.update(fields)
    with store.write() as session:
        return record_event(session=session, **values).id


def drop_append_only_triggers(store: Store) -> None:
    """What an attacker with database access would do first."""
    if store.dialect == "postgresql":
        statements = [
            "DROP TRIGGER audit_events_append_only ON audit_events",
            "DROP TRIGGER audit_events_no_truncate ON audit_events",
        ]
    else:
        statements = ["DROP TRIGGER audit_events_no_update", "DROP TRIGGER audit_events_no_delete"]
    with store.engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def tamper(store: Store, sql: str, **params: object) -> None:
    drop_append_only_triggers(store)
    with store.engine.begin() as connection:
        connection.execute(text(sql), params)
