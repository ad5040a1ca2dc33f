"""`status` of a large cluster: wall time and Kubernetes API calls, beside reading the same objects
with the kubernetes client directly.

    python -m bench scale [--quick] [--namespaces 50] [--services 20] [--replicas 2] [--experiments 200]

The playground (in this process, so its request log counts every call) is seeded with
`large:NxM` — N namespaces × M services, each with a Deployment, its pods and a VirtualService —
then the Deployments are scaled to ``--replicas`` and ``--experiments`` faults are injected through
the real pipeline. Figures are returned (and printed), never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta
from typing import Any

from core.policy import FaultLimits, Policy
from core.store import Actor, Source, Store
from core.store.migrate import upgrade
from mesh.kube import Kube, for_url

ACTOR = Actor(user_id="U0BENCH", team_id="T0BENCH", display_name="bench")
REPEATS = 5


def direct_reads(kube: Kube) -> None:
    """The floor: the objects `status` summarises, listed once each with the typed client."""
    kube.core.list_namespace(label_selector="istio-injection=enabled")
    kube.core.list_pod_for_all_namespaces()
    kube.custom.list_custom_object_for_all_namespaces("networking.istio.io", "v1", "virtualservices")
    kube.custom.list_custom_object_for_all_namespaces("networking.istio.io", "v1", "gateways")
    kube.apps.list_namespaced_deployment("istio-system")


def timed(fn: Any) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def run(namespaces: int, services: int, replicas: int, experiments: int) -> dict[str, Any]:
    import tempfile
    from pathlib import Path

    from bot.pipeline import Pipeline
    from handlers.status import handle
    from playground import runner

    with (
        tempfile.TemporaryDirectory(prefix="meshbot-scale-") as directory,
        runner.start(f"large:{namespaces}x{services}") as pg,
    ):
        kube = for_url(pg.url)
        kube.api_client.rest_client.pool_manager.connection_pool_kw["maxsize"] = 16
        began = time.perf_counter()
        if replicas != 1:
            for n in range(namespaces):
                for s in range(services):
                    kube.apps.patch_namespaced_deployment_scale(
                        f"svc-{s:03d}", f"team-{n:03d}", {"spec": {"replicas": replicas}}
                    )
        store = Store.from_url(f"sqlite:///{Path(directory) / 'scale.db'}")
        upgrade(store.engine)
        policy = Policy(
            faults=FaultLimits(max_concurrent_per_namespace=services, max_duration=timedelta(hours=2))
        )
        pipeline = Pipeline(store=store, kube=kube, policy=policy)
        for e in range(experiments):
            target = f"svc-{e % services:03d}.team-{e // services:03d}"
            reply = pipeline.run(f"fault delay 2s {target} for 1h", actor=ACTOR, source=Source.CLI)
            if not reply.ok:
                raise SystemExit(f"could not inject fault {e}: {reply.text}")
        seeded = time.perf_counter() - began
        pods = len(kube.core.list_pod_for_all_namespaces().items)
        statuses: list[float] = []
        calls: list[int] = []
        reply_text = ""
        for _ in range(REPEATS):
            pg.hooks.requests.clear()
            began = time.perf_counter()
            reply = pipeline.run("status", actor=ACTOR, source=Source.CLI)
            statuses.append(time.perf_counter() - began)
            calls.append(len(pg.hooks.requests))
            reply_text = reply.text
        pg.hooks.requests.clear()
        direct = [timed(lambda: direct_reads(kube)) for _ in range(REPEATS)]
        direct_calls = len(pg.hooks.requests) // REPEATS
        from bot.slack import render
        from handlers.reply import Reply

        blocks = sum(len(page) for page in render.pages(Reply(reply_text)))
        del handle
        kube.close()
        store.dispose()
    return {
        "services": namespaces * services,
        "namespaces": namespaces,
        "pods": pods,
        "virtualservices": namespaces * services,
        "experiments": experiments,
        "seed_seconds": seeded,
        "status_ms": statistics.median(statuses) * 1000,
        "status_calls": max(calls),
        "direct_ms": statistics.median(direct) * 1000,
        "direct_calls": direct_calls,
        "reply_lines": reply_text.count("\n") + 1,
        "slack_blocks": blocks,
    }


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench scale", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 namespaces × 4 services, 10 faults")
    parser.add_argument("--namespaces", type=int, default=50)
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--experiments", type=int, default=200)
    args = parser.parse_args(argv)
    if args.quick:
        args.namespaces, args.services, args.experiments = 5, 4, 10
    result = run(args.namespaces, args.services, args.replicas, args.experiments)
    print(
        f"scale: {result['services']} services, {result['pods']} pods, {result['virtualservices']} "
        f"VirtualServices, {result['experiments']} faults: status {result['status_ms']:.0f} ms in "
        f"{result['status_calls']} API calls; direct reads {result['direct_ms']:.0f} ms in "
        f"{result['direct_calls']} calls; {result['reply_lines']} lines, "
        f"{result['slack_blocks']} Slack blocks"
    )
    return result
