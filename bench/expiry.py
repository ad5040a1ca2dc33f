"""Expiry precision: how late faults leave the cluster, with 500 experiments active at once.

Target: p99 lateness under 2 s. A playground serves the cluster (50 namespaces × 10 services);
the real pipeline injects one fault per service (so 500 meshbot-owned VirtualServices) and the
real lifecycle — production settings unless overridden — reverts them. A watch on every
VirtualService records the moment each fault's annotation entry disappears; lateness is that
moment minus the expiry the store recorded. Figures are printed, never asserted.

    python -m bench expiry [--experiments 500] [--spread 30] [--burst] [--database sqlite|postgresql]
                           [--workers N] [--in-process]

``--spread``: the expiries are spread evenly over this many seconds (all experiments are active
before the first one expires). ``--burst``: all of them expire within the same second, the worst
case.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kubernetes import watch

from bot.lifecycle import Lifecycle, RecordingNotifier
from bot.pipeline import Pipeline
from core.policy import FaultLimits, Policy
from core.settings import Settings
from core.store import Actor, Source, Store, get_experiment, list_active
from core.store.migrate import upgrade
from mesh.faults import ANNOTATION
from mesh.kube import Kube, for_url
from playground import runner

GROUP, VERSION, PLURAL = "networking.istio.io", "v1", "virtualservices"
SERVICES_PER_NAMESPACE = 10
ACTOR = Actor(user_id="U0BENCH", team_id="T0BENCH", display_name="bench")


def _cluster(kube: Kube, count: int) -> list[tuple[str, str]]:
    """Namespaces and Services for ``count`` faults, one Service each."""
    targets: list[tuple[str, str]] = []
    namespaces = math.ceil(count / SERVICES_PER_NAMESPACE)
    for n in range(namespaces):
        namespace = f"bench-{n:03d}"
        kube.core.create_namespace(_body({"metadata": {"name": namespace}}))
        for s in range(SERVICES_PER_NAMESPACE):
            if len(targets) == count:
                break
            name = f"svc-{s}"
            service = {
                "metadata": {"name": name},
                "spec": {"selector": {"app": name}, "ports": [{"port": 80}]},
            }
            kube.core.create_namespaced_service(namespace, _body(service))
            targets.append((namespace, name))
    return targets


def _body(value: dict[str, Any]) -> Any:
    # The client takes plain dicts as well as its models; its stubs only name the models.
    return value


class RemovalWatch:
    """Records, per experiment id, when its annotation entry was first seen gone from the cluster."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.present: dict[tuple[str, str], set[str]] = {}  # (namespace, vs) → experiment ids
        self.removed: dict[str, float] = {}
        self._stop = threading.Event()
        listing: Any = kube.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
        self._version = listing["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._run, name="removal-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            stream = watch.Watch().stream(
                self.kube.custom.list_cluster_custom_object,
                GROUP,
                VERSION,
                PLURAL,
                resource_version=self._version,
                timeout_seconds=60,
            )
            for event in stream:
                seen = time.time()
                obj: dict[str, Any] = event["object"]
                meta = obj.get("metadata", {})
                self._version = meta.get("resourceVersion", self._version)
                key = (meta.get("namespace", ""), meta.get("name", ""))
                now_marked: set[str] = set()
                if event["type"] != "DELETED":
                    raw = (meta.get("annotations") or {}).get(ANNOTATION)
                    now_marked = set(json.loads(raw)) if raw else set()
                for experiment_id in self.present.get(key, set()) - now_marked:
                    self.removed.setdefault(experiment_id, seen)
                self.present[key] = now_marked
                if self._stop.is_set():
                    return


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


@contextmanager
def api_server(in_process: bool, directory: Path) -> Iterator[str]:
    """The playground's URL: in a process of its own (as a real API server is: it must not share
    the lifecycle's interpreter lock), or in this one."""
    if in_process:
        with runner.start("article") as pg:
            yield pg.url
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-c", "from bot.cli import main; main()", "playground", "--seed", "article"]
    command += ["--port", str(port), "--kubeconfig", str(directory / "kubeconfig")]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the playground did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


@contextmanager
def database(kind: str, directory: Path) -> Iterator[Store]:
    if kind == "sqlite":
        store = Store.from_url(f"sqlite:///{directory / 'bench.db'}")
    else:
        # The throwaway server the tests use (needs the repo root on sys.path: python -m bench).
        from tests.support.postgres import running_postgres

        with running_postgres(durable=True) as server:
            store = Store.from_url(server.create_database("bench"))
            try:
                upgrade(store.engine)
                yield store
            finally:
                store.dispose()
        return
    try:
        upgrade(store.engine)
        yield store
    finally:
        store.dispose()


def run(
    count: int, spread: float, kind: str, settings_overrides: dict[str, Any], in_process: bool
) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with (
        tempfile.TemporaryDirectory(prefix="meshbot-bench-") as directory,
        api_server(in_process, Path(directory)) as url,
        database(kind, Path(directory)) as store,
    ):
        kube = for_url(url)
        # Up to one connection per lifecycle worker (urllib3 keeps 10 by default and warns).
        kube.api_client.rest_client.pool_manager.connection_pool_kw["maxsize"] = 64
        policy = Policy(
            faults=FaultLimits(
                max_concurrent_per_namespace=SERVICES_PER_NAMESPACE, max_duration=timedelta(hours=1)
            )
        )
        pipeline = Pipeline(store=store, kube=kube, policy=policy)
        settings = Settings(**{"leader_election": False, **settings_overrides})
        lifecycle = Lifecycle(pipeline, kube, store, RecordingNotifier(), settings)
        try:
            targets = _cluster(kube, count)
            watcher = RemovalWatch(kube)
            lifecycle.start()
            return _measure(pipeline, store, targets, spread, watcher, settings)
        finally:
            lifecycle.stop()
            kube.close()


def _measure(
    pipeline: Pipeline,
    store: Store,
    targets: list[tuple[str, str]],
    spread: float,
    watcher: RemovalWatch,
    settings: Settings,
) -> dict[str, Any]:
    count = len(targets)
    # Creating a fault takes a few ms; leave the first expiry well after the last creation.
    estimate = 0.06 * count + 5
    first_expiry = time.time() + estimate
    started = time.monotonic()
    ids: list[str] = []
    for n, (namespace, service) in enumerate(targets):
        target = first_expiry + (spread * n / max(1, count - 1))
        seconds = max(1, round(target - time.time()))
        reply = pipeline.run(
            f"fault abort 503 50% {service}.{namespace} for {seconds}s", actor=ACTOR, source=Source.CLI
        )
        if not reply.ok or reply.experiment_id is None:
            raise SystemExit(f"could not inject fault {n}: {reply.text}")
        ids.append(reply.experiment_id)
    created = time.monotonic() - started
    with store.read() as session:
        active = len(list_active(session=session))
        expiries = {i: get_experiment(session=session, experiment_id=i).expires_at for i in ids}
    first = min(e for e in expiries.values() if e is not None)
    print(
        f"{count} faults injected in {created:.1f} s ({count / created:.0f}/s); {active} active; "
        f"first expiry in {(first - datetime.now(UTC)).total_seconds():.1f} s, "
        f"last in {(max(e for e in expiries.values() if e) - datetime.now(UTC)).total_seconds():.1f} s"
    )
    last = max(e for e in expiries.values() if e is not None)
    deadline = time.time() + (last - datetime.now(UTC)).total_seconds() + 30
    while len(watcher.removed) < count and time.time() < deadline:
        time.sleep(0.2)
    watcher.stop()
    late = [
        watcher.removed[i] - expiries[i].timestamp()  # type: ignore[union-attr]
        for i in ids
        if i in watcher.removed
    ]
    missing = count - len(late)
    early = sum(1 for value in late if value < 0)
    print(
        f"lateness over {len(late)} faults (sync every {settings.lifecycle_sync_seconds:g} s, "
        f"{settings.lifecycle_workers} workers, {store.dialect}):"
    )
    print(
        f"  p50 {statistics.median(late) * 1000:.0f} ms   p99 {_percentile(late, 0.99) * 1000:.0f} ms   "
        f"max {max(late) * 1000:.0f} ms   min {min(late) * 1000:.0f} ms"
    )
    verdict = "OK" if _percentile(late, 0.99) < 2.0 and not missing else "MISSED"
    print(f"  target p99 < 2 s: {verdict}; removed early: {early}; never seen removed: {missing}")
    return {
        "experiments": count,
        "p50_ms": statistics.median(late) * 1000,
        "p99_ms": _percentile(late, 0.99) * 1000,
        "max_ms": max(late) * 1000,
        "missing": missing,
        "database": store.dialect,
    }


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench expiry", description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="20 experiments over 3 s")
    parser.add_argument("--spread", type=float, default=30.0, help="seconds over which expiries spread")
    parser.add_argument("--burst", action="store_true", help="all expire within one second")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--workers", type=int, default=None, help="lifecycle_workers (default: the setting's)"
    )
    parser.add_argument(
        "--in-process", action="store_true", help="serve the playground in this process (shares its GIL)"
    )
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.workers:
        overrides["lifecycle_workers"] = args.workers
    if args.quick:
        args.experiments, args.spread = 20, 3.0
    spread = 0.0 if args.burst else args.spread
    where = "in this process" if args.in_process else "in its own process"
    print(f"expiry: {args.experiments} experiments, expiries spread over {spread:g} s, API server {where}")
    return run(args.experiments, spread, args.database, overrides, args.in_process)
