"""Pre-flight warnings and `--dry-run`, and a fault whose callers have no sidecar: warned before
it starts, and its card says it did not take effect."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.lifecycle import Lifecycle, RecordingNotifier
from bot.pipeline import Pipeline
from core.policy import FaultLimits, Policy
from core.settings import Settings
from core.store import Experiment, Source, get_experiment, list_experiments
from mesh.kube import for_url
from mesh.prometheus import Prometheus
from playground import runner, traffic
from playground.runner import Playground
from tests.lifecycle.conftest import ALICE, ALICE_OPERATES, FAST, new_store, wait_for
from tests.support.prometheus import PrometheusServer, backfill, running_prometheus

from .conftest import NS, Mesh

POLICY = Policy(faults=FaultLimits(max_concurrent_per_namespace=50), roles=ALICE_OPERATES)


def test_dry_run_shows_the_warnings_and_the_patch_and_writes_nothing(
    mesh: Mesh, make_playground: Callable[..., Playground], tmp_path: Path
) -> None:
    playground = make_playground("article")
    kube = for_url(playground.url)
    store = new_store(tmp_path / "meshbot.db")
    pipeline = Pipeline(store=store, kube=kube, policy=POLICY, prometheus=Prometheus(mesh.prometheus.url))
    try:
        playground.hooks.requests.clear()
        reply = pipeline.run(
            f"fault abort 500 40% web-svc.{NS} header=x-user:alice --dry-run",
            actor=ALICE,
            source=Source.SLACK,
            channel="C0CHAOS",
        )
        assert reply.ok, reply.text
        assert reply.text.startswith("Dry run, nothing applied or recorded")
        assert "meshbot-exp-dry-run" in reply.text and '"httpStatus": 500' in reply.text
        assert "x-user: alice" in reply.text and "cannot see headers" in reply.text
        assert "without a sidecar" in reply.text  # the article's pods are not injected yet
        assert reply.data["dry_run"] is True and reply.experiment_id is None
        assert playground.hooks.writes() == []
        with store.read() as session:
            assert list(list_experiments(session=session, since=datetime(2000, 1, 1, tzinfo=UTC))) == []
    finally:
        store.dispose()
        kube.close()


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Playground, PrometheusServer]]:
    """The write-up's cluster before `inject`: no pod has a sidecar, so no proxy reports a thing."""
    playground = runner.start("article")
    try:
        data = tmp_path_factory.mktemp("bare-prometheus")
        end = time.time() + 300
        backfill(traffic.openmetrics_history(playground.api, start=end - 3600, end=end, step=15), data)
        with running_prometheus(data_dir=data) as prometheus:
            yield playground, prometheus
    finally:
        playground.stop()


def test_a_fault_whose_callers_have_no_sidecar_is_warned_and_its_card_says_it_did_not_take_effect(
    bare: tuple[Playground, PrometheusServer], tmp_path: Path
) -> None:
    playground, prometheus = bare
    kube = for_url(playground.url)
    store = new_store(tmp_path / "meshbot.db")
    pipeline = Pipeline(store=store, kube=kube, policy=POLICY, prometheus=Prometheus(prometheus.url))
    notifier = RecordingNotifier()
    lifecycle = Lifecycle(pipeline, kube, store, notifier, Settings(**FAST))
    lifecycle.start()
    try:
        reply = pipeline.run(
            f"fault abort 500 40% web-svc.{NS} for 2s", actor=ALICE, source=Source.SLACK, channel="C0CHAOS"
        )
        assert reply.ok, reply.text
        assert "⚠ pods without a sidecar won't see this fault when they call web-svc" in reply.text
        assert "no requests reached web-svc.emojivoto-istio in the last 5 minutes" in reply.text
        # Scripts read the same warnings from the reply's data (docs/output.md).
        warnings = reply.data["warnings"]
        assert len(warnings) == 2 and "without a sidecar" in warnings[0] and "no requests" in warnings[1]
        experiment_id = str(reply.experiment_id)

        def ended() -> Experiment | None:
            with store.read() as session:
                e = get_experiment(session=session, experiment_id=experiment_id)
            return e if e.state == "ended" else None

        wait_for(ended, 15, "the fault to expire")
        card = notifier.wait_for(lambda n: n.experiment_id == experiment_id and "Report card" in n.text, 15)
        assert "Proof of effect: Did not take effect" in card.text
    finally:
        lifecycle.stop()
        store.dispose()
        kube.close()
