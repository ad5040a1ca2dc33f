"""A guard against the backfilled Prometheus: web-svc's callers already see a 50% abort there, so
a guard at 20% errors trips on its second evaluation and ends a 5-minute fault at once, through
the one end path, audited and said in the thread with the numbers."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from bot.lifecycle import Lifecycle, RecordingNotifier
from bot.pipeline import Pipeline
from core.policy import FaultLimits, Policy
from core.settings import Settings
from core.store import AuditQuery, Source, get_experiment, query_events
from mesh.kube import for_url
from mesh.prometheus import Prometheus
from playground.runner import Playground
from tests.lifecycle.conftest import ALICE, ALICE_OPERATES, FAST, new_store, wait_for

from .conftest import NS, Mesh


def test_a_guard_at_20_percent_errors_stops_a_40_percent_abort_early(
    mesh: Mesh, make_playground: Callable[..., Playground], tmp_path: Path
) -> None:
    kube = for_url(make_playground("article").url)
    store = new_store(tmp_path / "meshbot.db")
    policy = Policy(faults=FaultLimits(max_concurrent_per_namespace=50), roles=ALICE_OPERATES)
    pipeline = Pipeline(store=store, kube=kube, policy=policy, prometheus=Prometheus(mesh.prometheus.url))
    notifier = RecordingNotifier()
    lifecycle = Lifecycle(pipeline, kube, store, notifier, Settings(**{**FAST, "guard_interval": 0.2}))
    lifecycle.start()
    try:
        reply = pipeline.run(
            f'fault abort 500 40% web-svc.{NS} for 5m guard="error_rate(web-svc) > 20% window=5m"',
            actor=ALICE,
            source=Source.SLACK,
            channel="C0CHAOS",
        )
        assert reply.ok, reply.text
        experiment_id = str(reply.experiment_id)

        def ended() -> object:
            with store.read() as session:
                e = get_experiment(session=session, experiment_id=experiment_id)
            return e if e.state == "ended" else None

        experiment = wait_for(ended, 10, "the guard to end it")
        assert experiment.end_reason == "guard tripped"
        assert experiment.ended_at < experiment.expires_at
        note = notifier.wait_for(lambda n: n.experiment_id == experiment_id and n.final)
        found = re.search(r"error_rate\(web-svc\.emojivoto-istio\) = ([0-9.]+)%", note.text)
        assert found, note.text
        assert float(found[1]) > 20
        assert "2 evaluations in a row" in note.text
        with store.read() as session:
            rows = query_events(session=session, query=AuditQuery(verb="guard")).events
        assert len(rows) == 1 and rows[0].experiment_id == experiment_id
        assert f"= {found[1]}%" in rows[0].message
        # The card: the backfilled mesh callers carry a fault flag, the gateway's route does not.
        card = notifier.wait_for(lambda n: n.experiment_id == experiment_id and "Report card" in n.text)
        assert "stopped by its guard" in card.text
        assert "Proof of effect: abort 500 at 40%: observed" in card.text
        assert "of all traffic to web-svc.emojivoto-istio" in card.text
    finally:
        lifecycle.stop()
        store.dispose()
        kube.close()
