"""An experiment's life through the domain floor, against a playground and a SQLite store: start,
extend, and the one way to end — by a person's clear, the expiry timer or the reaper — leaving the
same cluster and the audit rows each trigger records."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.errors import Refused
from core.policy import FaultLimits, Policy
from core.store import AuditQuery, Experiment, Store, get_experiment, query_events
from core.store.migrate import upgrade
from core.values import Actor, EndReason
from domain import ending, experiments
from domain.ending import SCHEDULER, Verdict
from mesh.faults import abort_fault
from mesh.kube import Kube, for_url
from mesh.virtualservices import list_marked_faults
from playground.runner import Playground

NS = "emojivoto-istio"
ALICE = Actor(user_id="U0ALICE", team_id="T0001", display_name="alice")
VIRTUAL_SERVICES = r"/apis/networking\.istio\.io/v1/namespaces/emojivoto-istio/virtualservices"


@dataclass
class World:
    pg: Playground
    kube: Kube
    store: Store

    def start(self, *, ago: timedelta = timedelta(0), duration: timedelta = timedelta(minutes=5)) -> str:
        started = experiments.start(
            namespace=NS,
            service="web-svc",
            spec=abort_fault(50, http_status=500),
            duration=duration,
            actor=ALICE,
            channel="C0CHAOS",
            cluster="default",
            kube=self.kube,
            store=self.store,
            policy=Policy(faults=FaultLimits(max_concurrent_per_namespace=50)),
            now=datetime.now(UTC) - ago,
        )
        return started.experiment_id

    def overdue(self) -> str:
        """An experiment whose time was up a minute ago."""
        return self.start(ago=timedelta(minutes=2), duration=timedelta(minutes=1))

    def experiment(self, experiment_id: str) -> Experiment:
        with self.store.read() as session:
            return get_experiment(session=session, experiment_id=experiment_id)

    def virtual_services(self) -> dict[str, Any]:
        listed = self.kube.custom.list_namespaced_custom_object(
            "networking.istio.io", "v1", NS, "virtualservices"
        )
        return {
            vs["metadata"]["name"]: (vs["spec"], vs["metadata"].get("annotations") or {})
            for vs in listed["items"]
        }

    def in_cluster(self, experiment_id: str) -> bool:
        return any(m.experiment_id == experiment_id for m in list_marked_faults(self.kube))

    def audit_rows(self, verb: str) -> list[Any]:
        with self.store.read() as session:
            return list(query_events(session=session, query=AuditQuery(verb=verb)).events)


@pytest.fixture
def world(make_playground: Callable[..., Playground], tmp_path: Path) -> Iterator[World]:
    pg = make_playground("article")
    kube = for_url(pg.url)
    store = Store.from_url(f"sqlite:///{tmp_path / 'meshbot.db'}")
    upgrade(store.engine)
    yield World(pg, kube, store)
    store.dispose()
    kube.close()


# -------------------------------------------------------------------- the three triggers


def _by_clear(world: World, experiment_id: str) -> ending.Ended:
    experiment = world.experiment(experiment_id)
    return ending.end(
        world.kube,
        world.store,
        experiment_id,
        namespace=NS,
        vs_names=ending.vs_names(experiment),
        reason=EndReason.CLEARED,
        by=ALICE,
        now=datetime.now(UTC),
    )


def _by_expiry(world: World, experiment_id: str) -> ending.Ended:
    # The steps the expiry jobs take, each in the transaction they share with other jobs.
    now = datetime.now(UTC)
    with world.store.write() as session:
        claim = ending.claim_in(session, experiment_id, reason=EndReason.EXPIRED, by=SCHEDULER, due=now)
    assert claim.verdict == Verdict.CLAIMED and claim.experiment is not None
    report = ending.clear_experiment(world.kube, claim.experiment)
    with world.store.write() as session:
        ended = ending.end_in(
            session,
            experiment_id,
            by=SCHEDULER,
            now=now,
            verb="expire",
            message=f"{experiment_id} expired: {ending.describe_removed(report)}",
        )
    return ending.Ended(experiment_id, NS, report, claim, ended)


def _by_reaper(world: World, experiment_id: str) -> ending.Ended:
    now = datetime.now(UTC)
    (due,) = [d for d in ending.due_from_cluster(world.kube, now=now)[1] if d.experiment_id == experiment_id]
    return ending.end(
        world.kube,
        world.store,
        experiment_id,
        namespace=due.namespace,
        vs_names=due.vs_names,
        reason=EndReason.EXPIRED,
        by=SCHEDULER,
        now=now,
        accept=ending.ANY_DUE,
        due=now,
        verb="reap",
        message=lambda removed: f"{experiment_id} reaped: {removed}",
        cluster_alone=True,
    )


TRIGGERS = {
    "clear": (_by_clear, "cleared by user", None),
    "expiry": (_by_expiry, "expired", "expire"),
    "reaper": (_by_reaper, "expired", "reap"),
}


@pytest.mark.parametrize("trigger", list(TRIGGERS))
def test_every_trigger_ends_the_same_way(world: World, trigger: str) -> None:
    end, reason, verb = TRIGGERS[trigger]
    before = world.virtual_services()
    experiment_id = world.overdue()
    assert world.in_cluster(experiment_id) and world.virtual_services() != before

    ended = end(world, experiment_id)

    assert world.virtual_services() == before, "the cluster exactly as before the fault"
    assert ended.removed.startswith("1 fault route(s) removed from ")
    record = world.experiment(experiment_id)
    assert (record.state, record.end_reason) == ("ended", reason)
    by = "U0ALICE" if trigger == "clear" else "meshbot:scheduler"
    assert record.ended_by_user == by
    # A person's clear is audited once, by the pipeline around the command; the others by themselves.
    rows = [row for v in ("expire", "reap") for row in world.audit_rows(v)]
    if verb is None:
        assert rows == []
    else:
        (row,) = rows
        assert (row.verb, row.experiment_id, row.source, row.outcome) == (
            verb,
            experiment_id,
            "scheduler",
            "ok",
        )
        assert row.command == f"{verb} {experiment_id}"
        assert ended.removed in row.message


def test_start_records_then_applies(world: World) -> None:
    experiment_id = world.start(duration=timedelta(minutes=3))
    record = world.experiment(experiment_id)
    assert record.state == "active" and record.created_by_user == "U0ALICE"
    assert record.expires_at is not None and record.started_at is not None
    assert record.expires_at - record.started_at == timedelta(minutes=3)
    assert ending.vs_names(record) and world.in_cluster(experiment_id)
    (mark,) = [m for m in list_marked_faults(world.kube) if m.experiment_id == experiment_id]
    assert abs((mark.expires - record.expires_at).total_seconds()) < 1


def test_start_refuses_what_policy_rules_out_before_recording_anything(world: World) -> None:
    with pytest.raises(Refused, match="at most 1h by policy"):
        world.start(duration=timedelta(hours=2))
    with pytest.raises(Refused, match="protected by policy"):
        experiments.start(
            namespace="istio-system",
            service="istiod",
            spec=abort_fault(50, http_status=500),
            duration=None,
            actor=ALICE,
            channel=None,
            cluster="default",
            kube=world.kube,
            store=world.store,
            policy=Policy(),
            now=datetime.now(UTC),
        )
    assert list_marked_faults(world.kube) == []


def test_extend_moves_the_record_and_the_annotation(world: World) -> None:
    experiment_id = world.start(duration=timedelta(minutes=5))
    before = world.experiment(experiment_id).expires_at
    assert before is not None

    extended = experiments.extend(
        experiment_id=experiment_id,
        by=timedelta(minutes=10),
        max_duration=timedelta(hours=1),
        kube=world.kube,
        store=world.store,
    )

    assert extended.expires_at == before + timedelta(minutes=10)
    assert world.experiment(experiment_id).expires_at == extended.expires_at
    (mark,) = [m for m in list_marked_faults(world.kube) if m.experiment_id == experiment_id]
    assert abs((mark.expires - extended.expires_at).total_seconds()) < 1
    # Now not due: a timed trigger leaves it, and says why.
    with pytest.raises(ending.PermanentError) as refused:
        _by_reaper_forced(world, experiment_id)
    assert refused.value.claim.verdict == Verdict.EXTENDED
    assert world.in_cluster(experiment_id)


def _by_reaper_forced(world: World, experiment_id: str) -> ending.Ended:
    # The reaper would not list it as due from the annotation; ask the domain directly.
    now = datetime.now(UTC)
    return ending.end(
        world.kube,
        world.store,
        experiment_id,
        namespace=NS,
        vs_names=ending.vs_names(world.experiment(experiment_id)),
        reason=EndReason.EXPIRED,
        by=SCHEDULER,
        now=now,
        accept=ending.ANY_DUE,
        due=now,
        verb="reap",
    )


def test_ending_twice_is_refused_and_changes_nothing(world: World) -> None:
    experiment_id = world.start()
    _by_clear(world, experiment_id)
    after = world.virtual_services()
    ended_at = world.experiment(experiment_id).ended_at

    with pytest.raises(
        ending.PermanentError, match=rf"{experiment_id} has already ended \(cleared by user\)"
    ) as e:
        _by_clear(world, experiment_id)

    assert isinstance(e.value, Refused) and e.value.claim.verdict == Verdict.ENDED
    assert world.virtual_services() == after
    assert world.experiment(experiment_id).ended_at == ended_at


def test_a_failing_api_server_is_temporary_and_the_record_stays_ending(world: World) -> None:
    before = world.virtual_services()
    experiment_id = world.start()
    world.pg.hooks.fail_next(VIRTUAL_SERVICES, 10, code=503)

    with pytest.raises(ending.TemporaryError) as failed:
        _by_clear(world, experiment_id)

    assert failed.value.experiment_id == experiment_id
    record = world.experiment(experiment_id)
    assert (record.state, record.end_reason) == ("ending", "cleared by user")
    assert world.in_cluster(experiment_id)

    # A retry — here the expiry's, which takes over what was left ending — finishes the job.
    world.pg.hooks.clear_faults()
    with world.store.write() as session:
        claim = ending.claim_in(session, experiment_id, reason=EndReason.EXPIRED, by=SCHEDULER)
    assert claim.verdict == Verdict.ENDING
    ending.clear_experiment(world.kube, world.experiment(experiment_id))
    with world.store.write() as session:
        ending.end_in(session, experiment_id, by=SCHEDULER, now=datetime.now(UTC))
    assert world.virtual_services() == before
    assert world.experiment(experiment_id).end_reason == "cleared by user", "the reason it began with"


def test_without_the_store_a_fault_is_cleared_from_the_cluster_alone(world: World) -> None:
    before = world.virtual_services()
    experiment_id = world.overdue()

    ended = ending.end(
        world.kube,
        None,
        experiment_id,
        namespace=NS,
        vs_names=[],
        reason=EndReason.EXPIRED,
        by=SCHEDULER,
        now=datetime.now(UTC),
        accept=ending.ANY_DUE,
        cluster_alone=True,
    )

    assert world.virtual_services() == before
    assert not ended.recorded and ended.database_error
    assert world.experiment(experiment_id).state == "active", "left for the service to end later"
