"""Tampering by someone who can write the database: what the keyed chain, the exported head, the
recorded prunes and the scoped prune grant catch, and what an unkeyed chain cannot."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import Result

from core.store import (
    AuditEvent,
    AuditKey,
    AuditKeyError,
    ChainError,
    Source,
    Store,
    prune_events,
    verify_chain,
)
from core.store.chain import HASHED_COLUMNS, row_hash
from core.store.models import AuditPruneGrant

from .helpers import ALICE, NOW, add_event, drop_append_only_triggers, tamper

KEY = "k" * 40
OTHER_KEY = "o" * 40
KEYED = {"MESHBOT_AUDIT_KEY": KEY}


@pytest.fixture
def keyed(database_url: str) -> Iterator[Store]:
    """The same database as ``store``, opened with the chain's key."""
    store = Store.from_url(database_url, audit_key=AuditKey.from_setting(KEY))
    yield store
    store.dispose()


def rows(store: Store) -> list[dict[str, object]]:
    columns = [getattr(AuditEvent, name) for name in (*HASHED_COLUMNS, "hash")]
    with store.read() as session:
        return [dict(row) for row in session.execute(select(*columns).order_by(AuditEvent.id)).mappings()]


def rewrite_from(store: Store, event_id: int, message: str) -> None:
    """Change one row's message and recompute every later hash with plain SHA-256, chain head
    included: all that someone with write access but without the key can do."""
    drop_append_only_triggers(store)
    prev: str | None = None
    with store.engine.begin() as connection:
        for row in rows(store):
            if row["id"] < event_id:
                continue
            if row["id"] == event_id:
                row["message"] = message
            else:
                row["prev_hash"] = prev
            prev = row_hash(row)
            connection.execute(
                text("UPDATE audit_events SET message = :m, prev_hash = :p, hash = :h WHERE id = :i"),
                {"m": row["message"], "p": row["prev_hash"], "h": prev, "i": row["id"]},
            )
        connection.execute(text("UPDATE audit_chain SET last_hash = :h"), {"h": prev})


def sql(store: Store, statement: str, **params: object) -> None:
    with store.engine.begin() as connection:
        connection.execute(text(statement), params)


def verify(store: Store) -> str | None:
    with store.read(snapshot=True) as session:
        report = verify_chain(session=session)
    return None if report.broken is None else str(report.broken)


def test_a_rewritten_and_recomputed_chain_passes_unkeyed_and_fails_with_the_key(
    store: Store, keyed: Store
) -> None:
    for _ in range(3):
        add_event(store)
    for _ in range(3):
        add_event(keyed, message="keyed")
    rewrite_from(keyed, 5, "nothing happened")

    # Only the plain SHA-256 part can be recomputed; the keyed rows cannot.
    broken = verify(keyed)
    assert broken is not None and broken.startswith("row 5") and "content does not match" in broken


def test_the_limit_of_an_unkeyed_chain_a_full_rewrite_looks_intact(store: Store) -> None:
    for _ in range(4):
        add_event(store)
    rewrite_from(store, 2, "nothing happened")
    assert verify(store) is None


def test_unkeyed_rows_are_sealed_by_the_first_keyed_row(store: Store, keyed: Store) -> None:
    for _ in range(3):
        add_event(store)
    add_event(keyed)
    with keyed.read() as session:
        report = verify_chain(session=session)
    assert report.intact and report.keyed_from == 4 and report.unkeyed_span == (1, 3)

    drop_append_only_triggers(store)
    forged = rows(store)[1]
    forged["message"] = "rewritten before the key"
    second = row_hash(forged)
    third = {**rows(store)[2], "prev_hash": second}
    with store.engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_events SET message = :m, hash = :h WHERE id = 2"),
            {"m": forged["message"], "h": second},
        )
        connection.execute(
            text("UPDATE audit_events SET prev_hash = :p, hash = :h WHERE id = 3"),
            {"p": second, "h": row_hash(third)},
        )
    broken = verify(keyed)
    assert broken is not None and broken.startswith("row 4") and "prev_hash does not match" in broken


def test_a_keyed_chain_refuses_appends_without_its_key_or_with_another(
    database_url: str, store: Store, keyed: Store
) -> None:
    add_event(keyed)
    with pytest.raises(ChainError, match=r"keyed from row 1 .* MESHBOT_AUDIT_KEY is not set"):
        add_event(store)
    other = Store.from_url(database_url, audit_key=AuditKey.from_setting(OTHER_KEY))
    try:
        with pytest.raises(ChainError, match="is not the key the audit chain is keyed with"):
            add_event(other)
    finally:
        other.dispose()
    assert len(rows(store)) == 1


def test_a_short_key_is_one_line_naming_the_variable_and_never_shown(
    database_url: str, meshbot: Callable[..., Result]
) -> None:
    with pytest.raises(AuditKeyError, match="MESHBOT_AUDIT_KEY must be at least 32 bytes"):
        AuditKey.from_setting("short-secret")
    result = meshbot(database_url, "audit", env={"MESHBOT_AUDIT_KEY": "short-secret"})
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: MESHBOT_AUDIT_KEY must be at least 32 bytes, this one has 12: "
        "generate one with `openssl rand -hex 32`"
    ]
    assert "short-secret" not in result.output


def test_head_and_verify_name_the_key_by_fingerprint_only(
    database_url: str, keyed: Store, meshbot: Callable[..., Result]
) -> None:
    add_event(keyed)
    fingerprint = AuditKey(KEY.encode()).fingerprint
    head = meshbot(database_url, "audit", "head", env=KEYED)
    assert head.exit_code == 0, head.output
    assert head.stdout == f"1:{rows(keyed)[0]['hash']} key={fingerprint}\n"
    verified = meshbot(database_url, "audit", "verify", env=KEYED)
    assert verified.exit_code == 0, verified.output
    assert (
        verified.stdout
        == f"audit chain intact: 2 rows (ids 1..2), keyed from row 1 (key fingerprint {fingerprint})\n"
    )
    for result in (head, verified):
        assert KEY not in result.output
    assert all(KEY not in str(value) for row in rows(keyed) for value in row.values())


def test_verify_with_the_key_reports_the_rewrite_in_one_line(
    database_url: str, keyed: Store, meshbot: Callable[..., Result]
) -> None:
    for _ in range(3):
        add_event(keyed)
    rewrite_from(keyed, 2, "nothing happened")
    result = meshbot(database_url, "audit", "verify", env=KEYED)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "broken at row 2" in result.stderr and "content does not match its hash" in result.stderr


def test_verify_head_catches_the_newest_rows_cut(
    database_url: str, keyed: Store, meshbot: Callable[..., Result]
) -> None:
    for _ in range(4):
        add_event(keyed)
    exported = meshbot(database_url, "audit", "head", env=KEYED).stdout.strip()
    assert exported.startswith("4:")
    assert meshbot(database_url, "audit", "verify", "--head", exported, env=KEYED).exit_code == 0

    second = rows(keyed)[1]
    tamper(keyed, "DELETE FROM audit_events WHERE id > 2")
    sql(keyed, "UPDATE audit_chain SET last_event_id = 2, last_hash = :h", h=second["hash"])
    # Cutting the tail and the head together is invisible from inside the database ...
    assert verify(keyed) is None
    # ... but not against a head kept outside it.
    result = meshbot(database_url, "audit", "verify", "--head", exported, env=KEYED)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: audit chain does not hold the exported head {exported}: row 4 of the exported head "
        "is missing: the chain ends at row 2 (rows cut from the end?)"
    ]


def test_verify_head_catches_a_full_rewrite_even_of_an_unkeyed_chain(
    database_url: str, store: Store, meshbot: Callable[..., Result]
) -> None:
    for _ in range(3):
        add_event(store)
    exported = meshbot(database_url, "audit", "head").stdout.strip()
    assert exported.endswith(" unkeyed")
    rewrite_from(store, 2, "nothing happened")
    assert verify(store) is None
    result = meshbot(database_url, "audit", "verify", "--head", exported)
    assert result.exit_code == 1
    assert "row 3 does not have the exported hash" in result.stderr


def test_verify_head_is_a_usage_error_when_unreadable(
    database_url: str, meshbot: Callable[..., Result]
) -> None:
    result = meshbot(database_url, "audit", "verify", "--head", "latest")
    assert result.exit_code == 2
    assert "expected ID:HASH" in result.stderr


def _prune(store: Store, days: int = 400) -> None:
    with store.write() as session:
        prune_events(
            session=session,
            older_than=timedelta(days=days),
            actor=ALICE,
            source=Source.CLI,
            command="meshbot audit prune --older-than 400d",
            now=NOW,
        )


def test_moving_the_anchor_by_hand_fails_verify(keyed: Store) -> None:
    for _ in range(4):
        add_event(keyed)
    second = rows(keyed)[1]
    tamper(keyed, "DELETE FROM audit_events WHERE id <= 2")
    sql(keyed, "UPDATE audit_chain SET anchor_event_id = 2, anchor_hash = :h", h=second["hash"])
    broken = verify(keyed)
    assert broken is not None
    assert "the chain starts after row 2 (the prune anchor), but no recorded prune left it there" in broken


def test_an_anchor_moved_past_a_recorded_prune_fails_verify_and_is_not_pruned_over(keyed: Store) -> None:
    for days in (500, 450):
        add_event(keyed, at=NOW - timedelta(days=days))
    for days in (3, 2, 1):
        add_event(keyed, at=NOW - timedelta(days=days))
    _prune(keyed)
    assert verify(keyed) is None
    prune_row = rows(keyed)[-1]
    assert prune_row["message"].endswith(f"(ids 1..2), anchor 2:{rows(keyed)[0]['prev_hash']}")

    third = rows(keyed)[0]
    tamper(keyed, "DELETE FROM audit_events WHERE id = 3")
    sql(keyed, "UPDATE audit_chain SET anchor_event_id = 3, anchor_hash = :h", h=third["hash"])
    broken = verify(keyed)
    assert broken is not None
    assert "the prune anchor is row 3, but the last recorded prune (row 6) left it at row 2" in broken
    # A later prune must not make the moved anchor look legitimate by naming it.
    with pytest.raises(ChainError, match="prune refused"):
        _prune(keyed, days=1)


def test_a_prune_keeps_an_exported_head_from_before_it_valid(
    database_url: str, keyed: Store, meshbot: Callable[..., Result]
) -> None:
    for days in (500, 450, 1):
        add_event(keyed, at=NOW - timedelta(days=days))
    exported = meshbot(database_url, "audit", "head", env=KEYED).stdout.strip()
    _prune(keyed, days=100)
    result = meshbot(database_url, "audit", "verify", "--head", exported, env=KEYED)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_a_stray_prune_grant_does_not_open_delete(store: Store) -> None:
    for days in (500, 450, 1, 0):
        add_event(store, at=NOW - timedelta(days=days))
    _prune(store)  # the anchor moves to row 2; the grant 1..2 it used is gone with it
    with store.write() as session:
        session.add(AuditPruneGrant(token="left-behind", first_id=1, last_id=100))
        session.add(AuditPruneGrant(token="middle", first_id=4, last_id=4))
    for statement in ("DELETE FROM audit_events", "DELETE FROM audit_events WHERE id = 4"):
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as connection:
            connection.execute(text(statement))
    assert [row["id"] for row in rows(store)] == [3, 4, 5]


@pytest.mark.parametrize("dialect", ["postgresql"])
def test_a_stray_prune_setting_does_not_open_delete(store: Store) -> None:
    for _ in range(3):
        add_event(store)
    for setting in ("on", "2..3", "1..x"):
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as connection:
            connection.execute(text("SELECT set_config('meshbot.audit_prune', :s, true)"), {"s": setting})
            connection.execute(text("DELETE FROM audit_events"))
    assert len(rows(store)) == 3
