"""The namespace's concurrency cap under concurrent starts, on SQLite and PostgreSQL: counting the
running experiments and recording a new one is one step, and experiments still being applied
(pending) hold their place."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core.errors import Refused
from core.policy import FaultLimits, Policy
from core.store import Experiment, Store, create_experiment
from core.values import Actor, ExperimentKind
from domain import experiments
from mesh.faults import abort_fault
from mesh.kube import for_url
from playground.runner import Playground

NS = "emojivoto-istio"
ALICE = Actor(user_id="U0ALICE", display_name="alice")
SERVICES = ("web-svc", "emoji-svc", "voting-svc")


def test_six_concurrent_starts_with_a_cap_of_two_start_two(
    dialect: str, make_database: Callable[..., str], make_playground: Callable[..., Playground]
) -> None:
    store = Store.from_url(make_database(dialect))
    pg = make_playground("article")
    kube = for_url(pg.url)
    policy = Policy(faults=FaultLimits(max_concurrent_per_namespace=2))
    together = threading.Barrier(6)

    def start(i: int) -> str:
        together.wait()
        try:
            started = experiments.start(
                namespace=NS,
                service=SERVICES[i % len(SERVICES)],
                spec=abort_fault(10, http_status=500),
                duration=timedelta(minutes=5),
                actor=ALICE,
                channel=None,
                cluster="default",
                kube=kube,
                store=store,
                policy=policy,
                now=datetime.now(UTC),
            )
        except Refused as refused:
            return f"refused: {refused}"
        return started.experiment_id

    try:
        with ThreadPoolExecutor(6) as pool:
            outcomes = list(pool.map(start, range(6)))
        with store.read() as session:
            recorded = list(session.scalars(select(Experiment)))
    finally:
        kube.close()
        store.dispose()
    accepted = [o for o in outcomes if not o.startswith("refused")]
    assert len(accepted) == 2, outcomes
    assert all("already has 2 active faults" in o for o in outcomes if o.startswith("refused"))
    assert sorted(e.id for e in recorded) == sorted(accepted)
    assert {e.state for e in recorded} == {"active"}


def test_a_pending_start_holds_its_place_until_it_is_stale(
    dialect: str, make_database: Callable[..., str], make_playground: Callable[..., Playground]
) -> None:
    store = Store.from_url(make_database(dialect))
    pg = make_playground("article")
    kube = for_url(pg.url)
    now = datetime.now(UTC)

    def start() -> str:
        return experiments.start(
            namespace=NS,
            service="web-svc",
            spec=abort_fault(10, http_status=500),
            duration=None,
            actor=ALICE,
            channel=None,
            cluster="default",
            kube=kube,
            store=store,
            policy=Policy(faults=FaultLimits(max_concurrent_per_namespace=1)),
            now=now,
        ).experiment_id

    def pending(created: datetime) -> None:
        with store.write() as session:
            create_experiment(
                session=session,
                kind=ExperimentKind.ABORT,
                parameters={},
                cluster="default",
                namespace=NS,
                service="web-svc",
                duration=timedelta(minutes=5),
                created_by=ALICE,
                now=created,
            )

    try:
        # Another replica is applying one this very moment: the only place is taken.
        pending(now - timedelta(seconds=5))
        with pytest.raises(Refused, match="already has 1 active faults"):
            start()
        # One whose start died long ago (a crash before the cluster was touched) does not.
        with store.write() as session:
            for experiment in session.scalars(select(Experiment)):
                experiment.created_at = now - timedelta(hours=1)
        assert start().startswith("exp-")
    finally:
        kube.close()
        store.dispose()
