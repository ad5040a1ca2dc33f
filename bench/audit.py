"""Audit log at scale: 1,000,000 rows, a one-service 24 h query, and append throughput.

Targets: the query under 50 ms and appends (batch path, hash chain on) at 2,000 events/s or more,
on SQLite and on PostgreSQL. Figures are printed, never asserted: they depend on the machine.

    python -m bench audit [--rows N] [--databases sqlite,postgresql] [--queries N]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from core.store import (
    Actor,
    AuditKey,
    NewAuditEvent,
    Outcome,
    Source,
    Store,
    Target,
    parse_filters,
    query_events,
    record_event,
    record_events,
    verify_chain,
)
from core.store.migrate import upgrade

SERVICES = [f"svc-{n:02d}" for n in range(50)]
NAMESPACES = [f"team-{n}" for n in range(8)]
ACTORS = [Actor(user_id=f"U{n:07d}", team_id="T0001", display_name=f"user{n}") for n in range(40)]
VERBS = ["fault", "clear", "extend", "status", "audit", "expire"]
OUTCOMES = [Outcome.OK] * 8 + [Outcome.REFUSED, Outcome.DENIED, Outcome.ERROR]
SPAN = timedelta(days=400)
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
BATCH = 5_000
# Keyed as in production, so the figures include HMAC rather than plain SHA-256.
BENCH_KEY = AuditKey(b"meshbot-bench-audit-key-not-a-secret")
SINGLE_APPENDS = 1_000


def fixture_events(count: int, seed: int = 7) -> Iterator[list[NewAuditEvent]]:
    """``count`` events evenly spread over the 400 days before NOW, in batches."""
    rng = random.Random(seed)
    step = SPAN / count
    start = NOW - SPAN
    batch: list[NewAuditEvent] = []
    for n in range(count):
        service = rng.choice(SERVICES)
        verb = rng.choice(VERBS)
        batch.append(
            NewAuditEvent(
                actor=rng.choice(ACTORS),
                source=Source.SLACK,
                command=f"/mesh {verb} delay {service} 2s 50% for 10m",
                verb=verb,
                outcome=rng.choice(OUTCOMES),
                message="ok",
                channel="C0PROD",
                target=Target("prod", rng.choice(NAMESPACES), service),
                experiment_id=f"exp-{n % 65536:04x}",
                request_id=f"req-{n}",
                occurred_at=start + step * n,
            )
        )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


@contextmanager
def database(kind: str) -> Iterator[Store]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="meshbot-bench-") as directory:
            store = Store.from_url(f"sqlite:///{Path(directory) / 'bench.db'}", audit_key=BENCH_KEY)
            try:
                yield store
            finally:
                store.dispose()
        return
    # The throwaway server the tests use (needs the repo root on sys.path: python -m bench).
    from tests.support.postgres import running_postgres

    with running_postgres(durable=True) as server:
        store = Store.from_url(server.create_database("bench"), audit_key=BENCH_KEY)
        try:
            yield store
        finally:
            store.dispose()


def load(store: Store, rows: int) -> float:
    """Load the fixture through the repository's batch path (HMAC chain); returns events/s."""
    started = time.perf_counter()
    for batch in fixture_events(rows):
        with store.write() as session:
            record_events(session=session, events=batch)
    return rows / (time.perf_counter() - started)


def single_appends(store: Store) -> float:
    """One event per transaction, as a chat command appends it; returns events/s."""
    started = time.perf_counter()
    for n in range(SINGLE_APPENDS):
        with store.write() as session:
            record_event(
                session=session,
                actor=ACTORS[n % len(ACTORS)],
                source=Source.SLACK,
                command="/mesh status svc-01",
                verb="status",
                outcome=Outcome.OK,
                target=Target("prod", "team-1", "svc-01"),
                occurred_at=NOW,
            )
    return SINGLE_APPENDS / (time.perf_counter() - started)


def analyze(store: Store) -> None:
    # PostgreSQL's autovacuum would do this after a bulk load; SQLite never does it by itself.
    with store.engine.begin() as connection:
        connection.execute(text("ANALYZE"))


def query_times(store: Store, words_for: list[list[str]]) -> tuple[list[float], int]:
    """Milliseconds per query (session, parse, query, rows loaded) and the rows of the last."""
    times: list[float] = []
    found = 0
    for words in words_for:
        started = time.perf_counter()
        with store.read() as session:
            page = query_events(session=session, query=parse_filters(words, now=NOW))
            found = len(page.events)
        times.append((time.perf_counter() - started) * 1000)
    return times, found


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run(kind: str, rows: int, queries: int) -> dict[str, Any]:
    with database(kind) as store:
        upgrade(store.engine)
        began = time.perf_counter()
        load_rate = load(store, rows)
        load_seconds = time.perf_counter() - began
        analyze(store)
        single_rate = single_appends(store)
        rng = random.Random(11)
        cases = {
            "service=<svc> since=24h": lambda: [f"service={rng.choice(SERVICES)}", "since=24h"],
            "service=<svc> since=201d until=200d": lambda: [
                f"service={rng.choice(SERVICES)}",
                "since=201d",
                "until=200d",
            ],
            "namespace=<ns> outcome=denied since=7d": lambda: [
                f"namespace={rng.choice(NAMESPACES)}",
                "outcome=denied",
                "since=7d",
            ],
        }
        print(f"\n{kind}: {rows:,} audit rows")
        print(f"  batch append (fixture load, chain on) {load_rate:>10,.0f} events/s  ({load_seconds:.1f} s)")
        print(f"  single appends, one per transaction   {single_rate:>10,.0f} events/s")
        figures: dict[str, Any] = {"rows": rows, "single_appends_per_s": single_rate, "queries": {}}
        for label, words in cases.items():
            query_times(store, [words() for _ in range(10)])  # warm the cache
            times, found = query_times(store, [words() for _ in range(queries)])
            figures["queries"][label] = {"p50_ms": percentile(times, 0.5), "p95_ms": percentile(times, 0.95)}
            print(
                f"  query {label:<40} p50 {percentile(times, 0.5):6.2f} ms  "
                f"p95 {percentile(times, 0.95):6.2f} ms  ({found} rows in last page)"
            )
        began = time.perf_counter()
        with store.read() as session:
            report = verify_chain(session=session)
        state = "intact" if report.intact else f"BROKEN at {report.broken}"
        print(f"  verify whole chain                    {time.perf_counter() - began:10.1f} s  ({state})")
        return figures


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench audit", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="10,000 rows on SQLite, 20 queries")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.databases, args.queries = 10_000, "sqlite", 20
    return {kind.strip(): run(kind.strip(), args.rows, args.queries) for kind in args.databases.split(",")}
