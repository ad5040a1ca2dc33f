"""Querying the audit log: the key=value filter grammar, its errors, paging, and CLI output."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import Result

from core.store import (
    Actor,
    FilterError,
    Outcome,
    Source,
    Store,
    Target,
    parse_filter_text,
    parse_filters,
    query_events,
)
from core.store.filters import FILTER_KEYS, MAX_LIMIT

from .helpers import ALICE, BOB, NOW, add_event

CAROL = Actor(user_id="cli:carol", display_name="carol")


@pytest.fixture
def history(store: Store) -> Store:
    """Six events, ids 1..6 in time order, differing in every filterable field."""
    web = Target("prod", "shop", "web-svc")
    add_event(
        store,
        at=NOW - timedelta(hours=30),
        actor=ALICE,
        channel="C1",
        experiment_id="exp-0001",
        command="/mesh fault delay web-svc 2s 50%",
    )
    add_event(
        store,
        at=NOW - timedelta(hours=20),
        actor=BOB,
        channel="C1",
        verb="clear",
        experiment_id="exp-0001",
        command="/mesh clear exp-0001",
    )
    add_event(
        store,
        at=NOW - timedelta(hours=10),
        actor=ALICE,
        channel="C2",
        target=Target("prod", "shop", "cart"),
        outcome=Outcome.DENIED,
        command="/mesh fault abort cart 503",
    )
    add_event(
        store,
        at=NOW - timedelta(hours=5),
        actor=Actor.scheduler(),
        source=Source.SCHEDULER,
        verb="expire",
        target=web,
        experiment_id="exp-0002",
        command="expire exp-0002",
    )
    add_event(
        store,
        at=NOW - timedelta(hours=1),
        actor=CAROL,
        source=Source.CLI,
        verb="audit",
        target=Target(),
        outcome=Outcome.REFUSED,
        command="meshbot audit servce=web",
    )
    add_event(
        store,
        at=NOW - timedelta(minutes=30),
        actor=BOB,
        source=Source.API,
        target=Target("staging", "pay", "web-svc"),
        outcome=Outcome.ERROR,
        command="POST /faults: Connection REFUSED",
    )
    return store


def ids(store: Store, *words: str) -> list[int]:
    with store.read() as session:
        page = query_events(session=session, query=parse_filters(words, now=NOW))
    return [event.id for event in page.events]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ((), [6, 5, 4, 3, 2, 1]),
        (("actor=alice",), [3, 1]),
        (("actor=U0BOB",), [6, 2]),
        (("actor=meshbot:scheduler",), [4]),
        (("verb=fault",), [6, 3, 1]),
        (("service=web-svc",), [6, 4, 2, 1]),
        (("namespace=shop",), [4, 3, 2, 1]),
        (("cluster=staging",), [6]),
        (("channel=C2",), [3]),
        (("source=scheduler",), [4]),
        (("source=CLI",), [5]),
        (("outcome=denied",), [3]),
        (("outcome=error",), [6]),
        (("experiment=exp-0001",), [2, 1]),
        (("text=connection refused",), [6]),
        (("text=50%",), [1]),
        (("text=%",), [1]),
        (("text=_",), []),
        (("since=24h",), [6, 5, 4, 3, 2]),
        (("since=2026-11-20T06:00",), [6, 5, 4]),
        (("since=2026-11-20",), [6, 5, 4, 3]),
        (("until=12h",), [2, 1]),
        (("until=2026-11-20T07:00:00+01:00",), [3, 2, 1]),
        (("since=24h", "until=2h"), [4, 3, 2]),
        (("limit=2",), [6, 5]),
        (("service=web-svc", "since=24h"), [6, 4, 2]),
        (("verb=fault", "namespace=shop", "outcome=ok"), [1]),
    ],
)
def test_each_filter_selects_exactly_the_matching_events_newest_first(
    history: Store, words: tuple[str, ...], expected: list[int]
) -> None:
    assert ids(history, *words) == expected


def test_chat_text_with_quotes_parses_like_cli_words() -> None:
    from_chat = parse_filter_text('service=web-svc text="connection refused" since=24h', now=NOW)
    from_cli = parse_filters(["service=web-svc", "text=connection refused", "since=24h"], now=NOW)
    assert from_chat == from_cli
    assert from_chat.text == "connection refused"
    assert from_chat.since == NOW - timedelta(hours=24)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("90s", NOW - timedelta(seconds=90)),
        ("30m", NOW - timedelta(minutes=30)),
        ("24h", NOW - timedelta(hours=24)),
        ("7d", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(weeks=2)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T09:30", datetime(2026, 11, 1, 9, 30, tzinfo=UTC)),
        ("2026-11-01T09:30:00Z", datetime(2026, 11, 1, 9, 30, tzinfo=UTC)),
        ("2026-11-01T09:30:00+01:00", datetime(2026, 11, 1, 8, 30, tzinfo=UTC)),
    ],
)
def test_time_forms(spec: str, expected: datetime) -> None:
    assert parse_filters([f"since={spec}"], now=NOW).since == expected


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["servce=web"], "unknown filter 'servce' (did you mean service=?); known filters: actor,"),
        (["colour=red"], f"known filters: {', '.join(FILTER_KEYS)}"),
        (["since=yesterday"], "cannot read since=yesterday as a time; accepted: a duration ago"),
        (["until=2026-13-01"], "accepted: a duration ago (30m, 24h, 7d, 2w), a date in UTC"),
        ([f"limit={MAX_LIMIT + 1}"], f"limit={MAX_LIMIT + 1} is above the maximum of {MAX_LIMIT}"),
        (["limit=0"], "limit=0 is not a whole number from 1 to 500"),
        (["limit=ten"], "limit=ten is not a whole number"),
        (["web-svc"], "'web-svc' is not key=value; known filters:"),
        (["service=a", "service=b"], "service= is given twice"),
        (["service="], "service= needs a value"),
        (["outcome=failed"], "outcome=failed is not one of ok, refused, denied, error"),
        (["before=last"], "before=last is not an event id"),
        (["since=1h", "until=2h"], "is not before until="),
    ],
)
def test_bad_filters_say_what_is_wrong(words: list[str], message: str) -> None:
    with pytest.raises(FilterError) as raised:
        parse_filters(words, now=NOW)
    assert message in str(raised.value)


def test_before_an_unknown_event_is_a_clear_error(history: Store) -> None:
    with pytest.raises(FilterError, match="there is no audit event 999"):
        ids(history, "before=999")


def test_pages_cover_every_event_once_in_order_even_with_equal_times(store: Store) -> None:
    # Many events share a timestamp so the cursor must break ties by id.
    for i in range(45):
        add_event(store, at=NOW - timedelta(minutes=i // 4), command=f"event {i}")
    expected = ids(store, "limit=500")
    seen: list[int] = []
    before: int | None = None
    pages = 0
    while True:
        words = ["limit=7", *([f"before={before}"] if before else [])]
        with store.read() as session:
            page = query_events(session=session, query=parse_filters(words, now=NOW))
        seen += [event.id for event in page.events]
        pages += 1
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == expected
    assert len(set(seen)) == 45
    assert pages == 7


def test_a_filtered_listing_pages_too(history: Store) -> None:
    with history.read() as session:
        first = query_events(session=session, query=parse_filters(["service=web-svc", "limit=3"]))
        assert [e.id for e in first.events] == [6, 4, 2]
        assert first.next_before == 2
        rest = query_events(session=session, query=parse_filters(["service=web-svc", "limit=3", "before=2"]))
    assert [e.id for e in rest.events] == [1]
    assert rest.next_before is None


def test_cli_lists_as_json_csv_and_table(
    database_url: str, history: Store, meshbot: Callable[..., Result]
) -> None:
    as_json = meshbot(database_url, "audit", "service=web-svc", "limit=3", "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    listed = json.loads(as_json.stdout)
    assert [e["id"] for e in listed] == [6, 4, 2]
    assert listed[0]["command"] == "POST /faults: Connection REFUSED"
    assert "more: meshbot audit service=web-svc limit=3 before=2" in as_json.stderr

    as_csv = meshbot(database_url, "audit", "outcome=denied", "--format", "csv")
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["id"], r["actor_name"], r["service"]) for r in rows] == [("3", "alice", "cart")]

    as_table = meshbot(database_url, "audit", "experiment=exp-0001")
    assert as_table.exit_code == 0, as_table.output
    lines = as_table.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "TIME", "ACTOR"]
    assert lines[1].startswith("2 ") and "bob" in lines[1] and "/mesh clear exp-0001" in lines[1]
    assert lines[2].startswith("1 ") and "prod/shop/web-svc" in lines[2]
    assert len(lines) == 3


def test_cli_records_each_query_including_refused_ones(
    database_url: str, store: Store, meshbot: Callable[..., Result]
) -> None:
    good = meshbot(database_url, "audit", "service=web-svc")
    bad = meshbot(database_url, "audit", "servce=web-svc")

    assert good.exit_code == 0
    assert good.stdout == "no audit events match\n"
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: unknown filter 'servce' (did you mean service=?)")
    with store.read() as session:
        events = query_events(session=session, query=parse_filters(["source=cli"])).events
    assert [(e.command, e.verb, e.outcome) for e in events] == [
        ("meshbot audit servce=web-svc", "audit", "refused"),
        ("meshbot audit service=web-svc", "audit", "ok"),
    ]
    assert events[0].message.startswith("unknown filter 'servce'")
    assert events[0].actor_user_id.startswith("cli:")
