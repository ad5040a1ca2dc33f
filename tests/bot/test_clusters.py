"""Two clusters in one policy: a channel bound to the second acts there, and only there.

Two playgrounds stand in for two real clusters; the policy reaches them through kubeconfig files,
as it would reach real ones, so the whole connection recipe (mesh/clusters.py) is exercised.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.compose import clusters_of
from bot.lifecycle import Lifecycle, RecordingNotifier
from bot.pipeline import Pipeline
from core.policy import ClusterConfig, FaultLimits, Policy
from core.settings import Settings
from core.store import Actor, Source, Store, get_experiment
from core.store.migrate import upgrade
from mesh.virtualservices import list_marked_faults
from playground.runner import Playground

NS = "emojivoto-istio"
CHANNEL = "C0WEST"
ALICE = Actor(user_id="cli:alice", display_name="alice")


@dataclass
class TwoClusters:
    east: Playground
    west: Playground
    pipeline: Pipeline
    store: Store

    def run(self, text: str, *, channel: str | None = CHANNEL) -> tuple[str, bool, str | None]:
        reply = self.pipeline.run(text, actor=ALICE, source=Source.CLI, channel=channel)
        return reply.text, reply.ok, reply.experiment_id

    def marked(self, side: str) -> set[str]:
        assert self.pipeline.clusters is not None
        return {m.experiment_id for m in list_marked_faults(self.pipeline.clusters.kube(side), NS)}


@pytest.fixture
def two(make_playground: Callable[..., Playground], tmp_path: Path) -> Iterator[TwoClusters]:
    east, west = make_playground("article"), make_playground("article")
    # The west cluster lacks a namespace the east one has, to show where a namespace is checked.
    policy = Policy(
        default_cluster="east",
        clusters={
            "east": ClusterConfig(kubeconfig=east.kubeconfig(tmp_path / "east.yaml")),
            "west": ClusterConfig(kubeconfig=west.kubeconfig(tmp_path / "west.yaml")),
        },
        faults=FaultLimits(max_concurrent_per_namespace=10),
    )
    store = Store.from_url(f"sqlite:///{tmp_path / 'meshbot.db'}")
    upgrade(store.engine)
    clusters = clusters_of(policy, Settings())
    pipeline = Pipeline(store=store, kube=clusters.kube(), policy=policy, cluster="east", clusters=clusters)
    yield TwoClusters(east, west, pipeline, store)
    clusters.close()
    store.dispose()


def test_a_channel_bound_to_a_cluster_injects_there_and_status_says_which(two: TwoClusters) -> None:
    text, ok, _ = two.run(f"use {NS} cluster=west")
    assert ok, text
    assert text.startswith(f"This channel now uses namespace {NS} on cluster west")

    text, ok, experiment_id = two.run("fault delay 3s web-svc for 5m")
    assert ok, text
    assert experiment_id in two.marked("west")
    assert experiment_id not in two.marked("east"), "the default cluster must be left alone"
    with two.store.read() as session:
        assert get_experiment(session=session, experiment_id=experiment_id or "").cluster == "west"

    status, ok, _ = two.run("status")
    assert ok and status.startswith(f"Cluster *west* ({two.west.url})")
    # Without the channel's binding the default cluster is used, and it carries no fault.
    status, ok, _ = two.run("status", channel=None)
    assert ok and status.startswith(f"Cluster *east* ({two.east.url})")
    assert experiment_id not in status

    text, ok, _ = two.run(f"fault clear {experiment_id}")
    assert ok, text
    assert two.marked("west") == set()


def test_the_namespace_is_checked_on_the_cluster_it_is_bound_with(two: TwoClusters) -> None:
    assert two.pipeline.clusters is not None
    two.pipeline.clusters.kube("west").core.delete_namespace("emojivoto-istio")
    text, ok, _ = two.run(f"use {NS} cluster=west")
    assert not ok
    assert text == f"namespace {NS} does not exist"
    # The east cluster still has it: binding there works.
    text, ok, _ = two.run(f"use {NS} cluster=east")
    assert ok, text


def test_an_unknown_cluster_is_refused_with_the_known_ones(two: TwoClusters) -> None:
    text, ok, _ = two.run(f"use {NS} cluster=north")
    assert not ok
    assert text == "unknown cluster north; configured clusters: east, west"


def test_expiry_clears_the_fault_on_its_own_cluster(two: TwoClusters) -> None:
    two.run(f"use {NS} cluster=west")
    text, ok, experiment_id = two.run("fault abort 500 50% web-svc for 1s")
    assert ok, text
    lifecycle = Lifecycle(
        two.pipeline,
        two.pipeline.kube,
        two.store,
        RecordingNotifier(),
        Settings(leader_election=False, lifecycle_sync_seconds=0.2),
    )
    lifecycle.start()
    try:
        started = time.monotonic()
        while experiment_id in two.marked("west") and time.monotonic() - started < 10.0:
            time.sleep(0.1)
        assert experiment_id not in two.marked("west"), "the west cluster's fault outlived its expiry"
    finally:
        lifecycle.stop()
    with two.store.read() as session:
        ended = get_experiment(session=session, experiment_id=experiment_id or "")
    assert (ended.state, ended.end_reason) == ("ended", "expired")
