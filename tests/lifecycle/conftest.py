"""A meshbot for lifecycle tests: the write-up's cluster in a playground, a SQLite store, the real
pipeline, a recording notifier, and lifecycles with short intervals, stopped after the test.

Faults are created through the pipeline exactly as a person would, then the cluster is polled
with bounded waits: nothing here is mocked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.lifecycle import Lifecycle, RecordingNotifier
from bot.pipeline import Pipeline
from core.policy import FaultLimits, Policy, RoleBinding, RoleName
from core.settings import Settings
from core.store import Actor, Experiment, Source, Store, get_experiment
from core.store.migrate import upgrade
from mesh.kube import Kube, for_url
from mesh.virtualservices import list_marked_faults
from playground.runner import Playground

NS = "emojivoto-istio"
ALICE = Actor(user_id="U0ALICE", team_id="T0001", display_name="alice")
# Scheduled runs are authorized as their owner: alice, who schedules in these tests, operates.
ALICE_OPERATES: dict[RoleName, list[RoleBinding]] = {"operator": [RoleBinding(users=[ALICE.user_id])]}
CHANNEL = "C0CHAOS"

# Short everything, so a test waits a second or two, not a minute.
FAST: dict[str, Any] = {
    "leader_election": False,
    "lease_namespace": "default",
    "lease_duration_seconds": 2.0,
    "lease_renew_deadline_seconds": 1.5,
    "lease_retry_seconds": 0.2,
    "lifecycle_sync_seconds": 0.2,
    "lifecycle_reaper_seconds": 15.0,
    "lifecycle_reaper_grace_seconds": 0.5,
    "revert_retry_initial_seconds": 0.1,
    "revert_retry_max_seconds": 0.4,
    "revert_escalate_after": 3,
    "reminder_lead_seconds": 0,
    "nudge_every_seconds": 0,
    "schedule_misfire_grace_seconds": 5.0,
    "lifecycle_workers": 8,
}


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.02) -> Any:
    """Poll until ``predicate()`` is truthy (and return it), failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


@dataclass
class Env:
    pg: Playground
    kube: Kube
    store: Store
    db_path: Path
    notifier: RecordingNotifier
    policy: Policy
    clock: Callable[[], datetime] | None = None
    lifecycles: list[Lifecycle] = field(default_factory=list)
    _pipeline: Pipeline | None = None

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            extra: dict[str, Any] = {"clock": self.clock} if self.clock else {}
            self._pipeline = Pipeline(store=self.store, kube=self.kube, policy=self.policy, **extra)
        return self._pipeline

    def settings(self, **overrides: Any) -> Settings:
        return Settings(**{**FAST, **overrides})

    def lifecycle(self, *, start: bool = True, identity: str | None = None, **overrides: Any) -> Lifecycle:
        lifecycle = Lifecycle(
            self.pipeline,
            self.kube,
            self.store,
            self.notifier,
            self.settings(**overrides),
            identity=identity,
            clock=self.clock,
        )
        self.lifecycles.append(lifecycle)
        if start:
            lifecycle.start()
        return lifecycle

    def run(self, command: str, *, actor: Actor = ALICE, channel: str | None = CHANNEL) -> Any:
        return self.pipeline.run(command, actor=actor, source=Source.SLACK, channel=channel)

    def start_fault(self, service: str = "web-svc", duration: str = "2s", kind: str = "abort 500 50%") -> str:
        reply = self.run(f"fault {kind} {service}.{NS} for {duration}")
        assert reply.ok, reply.text
        assert reply.experiment_id
        return str(reply.experiment_id)

    def flush(self, lifecycle: Lifecycle) -> None:
        """Wait until every notification the lifecycle queued so far has been delivered (they go
        out in order from one thread, so a marker sent now arrives after all of them)."""
        marker = f"flush-{time.monotonic()}"
        lifecycle.rt.notifier.channel_message("flush", marker)
        self.notifier.wait_for(lambda n: n.text == marker)

    def experiment(self, experiment_id: str) -> Experiment:
        with self.store.read() as session:
            return get_experiment(session=session, experiment_id=experiment_id)

    def armed(self, lifecycle: Lifecycle, experiment_id: str) -> bool:
        """Whether the leader's scheduler holds the experiment's expiry job — what the leader did
        about it, seen from outside (job ids are ``expire:<experiment>``)."""
        return lifecycle.rt.has_job(f"expire:{experiment_id}")

    def in_cluster(self, experiment_id: str) -> bool:
        return any(m.experiment_id == experiment_id for m in list_marked_faults(self.kube))

    def wait_gone(self, experiment_id: str, *, within: float) -> float:
        """Wait until the fault is out of the cluster, at most ``within`` seconds after its expiry;
        returns how late (seconds after expiry) it was seen gone."""
        expires = self.experiment(experiment_id).expires_at
        assert expires is not None
        deadline = (expires - datetime.now(UTC)).total_seconds() + within
        wait_for(lambda: not self.in_cluster(experiment_id), max(deadline, 0.1), f"{experiment_id} removed")
        return (datetime.now(UTC) - expires).total_seconds()

    def wait_state(self, experiment_id: str, state: str, timeout: float = 5.0) -> Experiment:
        return wait_for(
            lambda: (e := self.experiment(experiment_id)).state == state and e,
            timeout,
            f"{experiment_id} {state}",
        )


def new_store(path: Path) -> Store:
    store = Store.from_url(f"sqlite:///{path}")
    upgrade(store.engine)
    return store


@pytest.fixture
def env(make_playground: Callable[..., Playground], tmp_path: Path) -> Iterator[Env]:
    pg = make_playground("article")
    kube = for_url(pg.url)
    db_path = tmp_path / "meshbot.db"
    store = new_store(db_path)
    policy = Policy(faults=FaultLimits(max_concurrent_per_namespace=50), roles=ALICE_OPERATES)
    environment = Env(pg, kube, store, db_path, RecordingNotifier(), policy)
    yield environment
    for lifecycle in environment.lifecycles:
        lifecycle.stop()
    store.dispose()
    kube.close()
