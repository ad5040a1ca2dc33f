"""The audit log: every command recorded, append-only in the database, tamper-evident, prunable."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import Result

from core.store import (
    Actor,
    AuditEvent,
    AuditQuery,
    ChainError,
    NewAuditEvent,
    Outcome,
    Source,
    Store,
    Target,
    event_to_dict,
    prune_events,
    query_events,
    record_event,
    record_events,
    verify_chain,
)
from core.store.chain import GENESIS_HASH, HASHED_COLUMNS, canonical_time, row_hash

from .helpers import ALICE, BOB, NOW, add_event, tamper


def all_events(store: Store) -> list[AuditEvent]:
    with store.read() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_an_event_keeps_who_did_what_to_which_service_when_and_how_it_went(store: Store) -> None:
    at = datetime(2026, 11, 1, 9, 30, 15, 123456, tzinfo=UTC)
    with store.write() as session:
        record_event(
            session=session,
            actor=ALICE,
            source=Source.SLACK,
            command="/mesh fault delay web-svc 2s 50% for 10m",
            verb="fault",
            outcome=Outcome.OK,
            message="delay injected into 2 VirtualServices",
            channel="C0PROD",
            target=Target("prod-eu", "shop", "web-svc"),
            experiment_id="exp-7f3a",
            request_id="req-42",
            occurred_at=at,
        )
    (event,) = all_events(store)
    recorded = event_to_dict(event)
    assert recorded["hash"] and recorded["prev_hash"] == GENESIS_HASH
    del recorded["hash"], recorded["prev_hash"]
    assert recorded == {
        "id": 1,
        "time": "2026-11-01T09:30:15.123456Z",
        "actor_team_id": "T0001",
        "actor_user_id": "U0ALICE",
        "actor_name": "alice",
        "channel": "C0PROD",
        "source": "slack",
        "command": "/mesh fault delay web-svc 2s 50% for 10m",
        "verb": "fault",
        "cluster": "prod-eu",
        "namespace": "shop",
        "service": "web-svc",
        "outcome": "ok",
        "message": "delay injected into 2 VirtualServices",
        "experiment_id": "exp-7f3a",
        "request_id": "req-42",
    }


def test_denied_malformed_failed_and_automatic_actions_are_all_recorded(store: Store) -> None:
    add_event(store, actor=BOB, outcome=Outcome.DENIED, message="bob may not inject in prod")
    add_event(store, command="/mesh fualt web", verb="fualt", target=Target(), outcome=Outcome.REFUSED)
    add_event(store, outcome=Outcome.ERROR, message="VirtualService web-svc: 409 Conflict")
    add_event(
        store,
        actor=Actor.scheduler(),
        source=Source.SCHEDULER,
        command="expire exp-7f3a",
        verb="expire",
        experiment_id="exp-7f3a",
    )
    add_event(store, command="/mesh fault \x00weird", verb="fault", outcome=Outcome.REFUSED)

    events = all_events(store)
    assert [(e.actor_user_id, e.source, e.verb, e.outcome) for e in events] == [
        ("U0BOB", "slack", "fault", "denied"),
        ("U0ALICE", "slack", "fualt", "refused"),
        ("U0ALICE", "slack", "fault", "error"),
        ("meshbot:scheduler", "scheduler", "expire", "ok"),
        ("U0ALICE", "slack", "fault", "refused"),
    ]
    assert events[2].message == "VirtualService web-svc: 409 Conflict"
    assert events[4].command == "/mesh fault \ufffdweird"
    with store.read() as session:
        assert verify_chain(session=session).intact


def test_an_absurdly_long_value_is_clipped_not_refused(store: Store) -> None:
    add_event(store, target=Target(service="x" * 1000), command="y" * 10_000)
    (event,) = all_events(store)
    assert event.service == "x" * 255
    # Unbounded text columns keep their start and say they were cut (the chain covers what is kept).
    assert event.command == "y" * 4096 + " … [cut: 10000 characters, first 4096 kept]"


def test_events_are_hash_chained(store: Store) -> None:
    for _ in range(3):
        add_event(store)
    first, second, third = all_events(store)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    assert len({first.hash, second.hash, third.hash}) == 3


def test_a_batch_appends_the_same_chain_as_single_events(store: Store) -> None:
    at = NOW - timedelta(hours=1)
    add_event(store, at=at)
    batch = [
        NewAuditEvent(
            actor=BOB,
            source=Source.API,
            command=f"POST /faults #{i}",
            verb="fault",
            outcome=Outcome.OK,
            target=Target("prod", "shop", f"svc-{i}"),
            occurred_at=at + timedelta(seconds=i),
        )
        for i in range(1, 101)
    ]
    with store.write() as session:
        ids = record_events(session=session, events=batch)
    assert list(ids) == list(range(2, 102))
    add_event(store)
    events = all_events(store)
    assert [e.id for e in events] == list(range(1, 103))
    assert events[50].command == "POST /faults #50"
    with store.read() as session:
        report = verify_chain(session=session)
    assert report.intact and report.rows == 102


def test_concurrent_writers_still_build_one_unbroken_chain(store: Store) -> None:
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            for i in range(15):
                add_event(store, command=f"worker {worker} event {i}")
        except BaseException as error:  # surfaced below: a thread's exception is otherwise lost
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    events = all_events(store)
    assert [e.id for e in events] == list(range(1, 61))
    with store.read() as session:
        report = verify_chain(session=session)
    assert report.intact, report.broken


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET outcome = 'ok', message = 'nothing happened' WHERE id = 1",
        "DELETE FROM audit_events WHERE id = 1",
        "DELETE FROM audit_events",
    ],
)
def test_the_database_itself_refuses_to_change_or_delete_audit_rows(store: Store, statement: str) -> None:
    add_event(store, outcome=Outcome.DENIED, message="bob may not")
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as connection:
        connection.execute(text(statement))
    (event,) = all_events(store)
    assert (event.outcome, event.message) == ("denied", "bob may not")


def test_an_orm_edit_of_a_loaded_event_is_refused_too(store: Store) -> None:
    add_event(store, message="original")
    with pytest.raises(DBAPIError, match="append-only"), store.write() as session:
        event = session.get(AuditEvent, 1)
        assert event is not None
        event.message = "edited"
    assert all_events(store)[0].message == "original"


@pytest.mark.parametrize("dialect", ["postgresql"])  # SQLite has no TRUNCATE
def test_postgresql_refuses_truncate(store: Store) -> None:
    add_event(store)
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as connection:
        connection.execute(text("TRUNCATE audit_events"))
    assert len(all_events(store)) == 1


def test_verify_says_the_chain_is_intact_with_the_row_count(
    database_url: str, store: Store, meshbot: Callable[..., Result]
) -> None:
    for _ in range(5):
        add_event(store)
    result = meshbot(database_url, "audit", "verify")
    assert result.exit_code == 0, result.output
    intact, caveat = result.stdout.splitlines()
    assert intact == "audit chain intact: 5 rows (ids 1..5)"
    # Without a key it must not sound like more than it is.
    assert caveat.startswith("unkeyed: MESHBOT_AUDIT_KEY is not set")
    assert "not tampering by someone who can write the database" in caveat


def test_verify_reports_a_row_altered_behind_the_stores_back(
    database_url: str, store: Store, meshbot: Callable[..., Result]
) -> None:
    times = [NOW - timedelta(minutes=10 - i) for i in range(5)]
    for at in times:
        add_event(store, at=at, outcome=Outcome.DENIED)
    tamper(store, "UPDATE audit_events SET outcome = 'ok' WHERE id = 3")

    result = meshbot(database_url, "audit", "verify")

    assert result.exit_code == 1
    assert f"broken at row 3 ({canonical_time(times[2])})" in result.stderr
    assert "content does not match its hash" in result.stderr
    assert "Traceback" not in result.output


def test_verify_reports_the_next_row_when_a_forger_recomputes_the_altered_rows_hash(
    store: Store,
) -> None:
    for _ in range(4):
        add_event(store)
    with store.read() as session:
        row = dict(
            session.execute(
                select(*[getattr(AuditEvent, c) for c in HASHED_COLUMNS]).where(AuditEvent.id == 2)
            )
            .mappings()
            .one()
        )
    row["message"] = "forged"
    tamper(
        store,
        "UPDATE audit_events SET message = :message, hash = :hash WHERE id = 2",
        message="forged",
        hash=row_hash(row),
    )
    with store.read() as session:
        report = verify_chain(session=session)
    assert report.broken is not None
    assert report.broken.event_id == 3
    assert "prev_hash does not match the hash of row 2" in report.broken.problem


def test_verify_reports_deleted_rows_in_the_middle_and_at_the_end(store: Store) -> None:
    for _ in range(6):
        add_event(store)
    tamper(store, "DELETE FROM audit_events WHERE id IN (3, 4)")
    with store.read() as session:
        report = verify_chain(session=session)
    assert report.broken is not None
    assert report.broken.event_id == 5
    assert "rows 3..4 are missing" in report.broken.problem

    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_events WHERE id >= 3"))
    with store.read() as session:
        report = verify_chain(session=session)
    assert report.broken is not None
    assert "rows 3..6 are missing from the end" in report.broken.problem


def _old_and_new_events(store: Store) -> None:
    for days in (500, 450, 420):
        add_event(store, at=NOW - timedelta(days=days), command=f"old {days}d")
    for days in (30, 1):
        add_event(store, at=NOW - timedelta(days=days), command=f"recent {days}d")


def test_prune_deletes_old_rows_keeps_the_chain_verifiable_and_records_itself(store: Store) -> None:
    _old_and_new_events(store)
    with store.write() as session:
        result = prune_events(
            session=session,
            older_than=timedelta(days=400),
            actor=ALICE,
            source=Source.SLACK,
            command="/mesh audit prune 400d",
            now=NOW,
        )
    assert (result.deleted, result.first_deleted_id, result.last_deleted_id) == (3, 1, 3)
    events = all_events(store)
    assert [e.command for e in events] == ["recent 30d", "recent 1d", "/mesh audit prune 400d"]
    prune_event = events[-1]
    assert (prune_event.verb, prune_event.actor_user_id) == ("audit prune", "U0ALICE")
    assert "pruned 3 events" in prune_event.message and "ids 1..3" in prune_event.message
    with store.read() as session:
        report = verify_chain(session=session)
    assert report.intact and (report.rows, report.first_id, report.last_id) == (3, 4, 6)

    add_event(store)
    with store.read() as session:
        assert verify_chain(session=session).intact
    # The prune's permission ended with its transaction: plain DELETEs are refused again.
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_events"))


def test_prune_only_removes_a_prefix_of_the_chain(store: Store) -> None:
    add_event(store, at=NOW - timedelta(days=500), command="old")
    add_event(store, at=NOW - timedelta(days=1), command="recent")
    add_event(store, at=NOW - timedelta(days=600), command="old, written late")
    with store.write() as session:
        result = prune_events(
            session=session,
            older_than=timedelta(days=400),
            actor=ALICE,
            source=Source.CLI,
            command="meshbot audit prune --older-than 400d",
            now=NOW,
        )
    assert result.deleted == 1
    assert [e.command for e in all_events(store)][:2] == ["recent", "old, written late"]


def test_prune_with_nothing_old_enough_is_still_recorded(store: Store) -> None:
    add_event(store, at=NOW - timedelta(days=1))
    with store.write() as session:
        result = prune_events(
            session=session,
            older_than=timedelta(days=400),
            actor=ALICE,
            source=Source.CLI,
            command="meshbot audit prune --older-than 400d",
            now=NOW,
        )
    assert result.deleted == 0
    assert result.event.message.startswith("pruned 0 events older than 2025-10-16T12:00:00")
    assert len(all_events(store)) == 2


def test_prune_refuses_to_destroy_evidence_of_tampering(store: Store) -> None:
    _old_and_new_events(store)
    tamper(store, "UPDATE audit_events SET command = 'nothing to see' WHERE id = 2")
    with pytest.raises(ChainError, match="broken at row 2"), store.write() as session:
        prune_events(
            session=session,
            older_than=timedelta(days=400),
            actor=ALICE,
            source=Source.CLI,
            command="meshbot audit prune --older-than 400d",
            now=NOW,
        )
    assert len(all_events(store)) == 5


def test_prune_through_the_cli_keeps_verify_green(
    database_url: str, store: Store, meshbot: Callable[..., Result]
) -> None:
    now = datetime.now(UTC)
    for days in (900, 800, 2):
        add_event(store, at=now - timedelta(days=days))

    pruned = meshbot(database_url, "audit", "prune", "--older-than", "400d", "--yes")
    assert pruned.exit_code == 0, pruned.output
    assert pruned.stdout.startswith("pruned 2 events older than")

    verified = meshbot(database_url, "audit", "verify")
    assert verified.exit_code == 0, verified.output
    assert verified.stdout.splitlines()[0] == "audit chain intact: 2 rows (ids 3..4)"
    with store.read() as session:
        commands = [e.command for e in query_events(session=session, query=AuditQuery()).events]
    assert commands[:2] == ["meshbot audit verify", "meshbot audit prune --older-than 400d"]


def test_prune_without_yes_off_a_terminal_deletes_nothing(
    database_url: str, store: Store, meshbot: Callable[..., Result]
) -> None:
    add_event(store, at=datetime.now(UTC) - timedelta(days=2))
    result = meshbot(database_url, "audit", "prune", "--older-than", "1s")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: audit prune deletes every audit event older than 1s and cannot be undone: "
        "add --yes to do it; nothing was deleted\n"
    )
    assert len(all_events(store)) == 1


def test_prune_at_a_terminal_asks_first(database_url: str, store: Store) -> None:
    add_event(store, at=datetime.now(UTC) - timedelta(days=2))
    # A real terminal (a pseudo-terminal) on stdin, so the question is asked as a person sees it.
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("meshbot")), "audit", "prune", "--older-than", "1d"],
        stdin=terminal,
        stdout=terminal,
        stderr=subprocess.PIPE,
        env={**os.environ, "MESHBOT_DATABASE_URL": database_url},
    )
    os.close(terminal)
    seen = b""
    while b"[y/N]" not in seen:
        seen += os.read(controller, 1024)
    assert b"Delete every audit event older than 1d? This cannot be undone. [y/N]" in seen
    os.write(controller, b"y\n")
    assert process.wait(timeout=30) == 0, process.stderr.read() if process.stderr else ""
    os.close(controller)
    assert [e.verb for e in all_events(store)] == ["audit prune"]


def test_prune_with_a_bad_age_is_a_usage_error_and_recorded(
    database_url: str, store: Store, meshbot: Callable[..., Result]
) -> None:
    result = meshbot(database_url, "audit", "prune", "--older-than", "a while")
    assert result.exit_code == 2
    assert "cannot read --older-than a while" in result.stderr
    (event,) = all_events(store)
    assert (event.verb, event.outcome) == ("audit prune", "refused")


def test_the_chain_head_tracks_the_last_row(store: Store) -> None:
    for _ in range(3):
        add_event(store)
    with store.read() as session:
        count = session.scalar(select(func.count()).select_from(AuditEvent))
        head = session.execute(text("SELECT last_event_id, last_hash FROM audit_chain")).one()
        last = session.get(AuditEvent, 3)
    assert count == 3 and last is not None
    assert tuple(head) == (3, last.hash)


def test_verify_reports_rows_added_at_the_end_outside_meshbot(store: Store) -> None:
    for _ in range(2):
        add_event(store)
    with store.read() as session:
        row = dict(
            session.execute(
                select(*[getattr(AuditEvent, c) for c in HASHED_COLUMNS]).where(AuditEvent.id == 2)
            )
            .mappings()
            .one()
        )
    previous_hash = all_events(store)[-1].hash
    forged = {**row, "id": 3, "message": "forged", "prev_hash": previous_hash}
    with store.engine.begin() as connection:
        connection.execute(insert(AuditEvent), [{**forged, "hash": row_hash(forged)}])
    with store.read() as session:
        report = verify_chain(session=session)
    assert report.broken is not None
    assert report.broken.event_id == 3
    assert "beyond the chain head" in report.broken.problem


def test_a_snapshot_read_does_not_see_appends_made_meanwhile(store: Store) -> None:
    add_event(store)
    with store.read(snapshot=True) as session:
        before = session.scalar(select(func.count()).select_from(AuditEvent))
        add_event(store)
        add_event(store)
        during = session.scalar(select(func.count()).select_from(AuditEvent))
        assert verify_chain(session=session).intact
    assert (before, during) == (1, 1)
    assert len(all_events(store)) == 3
