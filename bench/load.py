"""meshbot serve under load: ack latency beside a bare endpoint, command to effect beside the
kubernetes client, fault clear under a flood of `status`, and RSS idle and after the load.

    python -m bench load [--quick] [--seconds 10] [--rates 10,50,200]

Every server is a process of its own on 127.0.0.1: the playground (the Kubernetes API), `meshbot
serve` (real uvicorn, SQLite store, lifecycle on and leading), the bare FastAPI + signature
endpoint (bench/_bare.py) and each load (bench/_drive.py); only the fake Slack lives here. Figures
are returned (and printed), never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from kubernetes import watch

from core.clock import utcnow
from core.store import Store, claim_request_key, list_active
from core.store.migrate import upgrade
from mesh.kube import Kube, for_url

SECRET = "0123456789abcdef0123456789abcdef"
GROUP, VERSION, PLURAL = "networking.istio.io", "v1", "virtualservices"
NAMESPACE, SERVICE = "emojivoto-istio", "web-svc"
JSON_PATCH = "application/json-patch+json"
ADMIN = "U0BENCH"
ROUTE = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "VirtualService",
    "metadata": {"name": SERVICE, "namespace": NAMESPACE},
    "spec": {
        "hosts": [SERVICE],
        "http": [{"route": [{"destination": {"host": SERVICE, "port": {"number": 80}}}]}],
    },
}
POLICY = f"roles:\n  admin: {{users: [{ADMIN}]}}\n  viewer: {{users: ['*']}}\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_port(port: int, process: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"{what} did not start") from None
            time.sleep(0.05)


@contextmanager
def process(command: list[str], port: int, what: str, env: dict[str, str] | None = None) -> Iterator[int]:
    """Yields the process id once its port answers."""
    log = open(os.devnull, "wb")  # noqa: SIM115 - closed below, with the process
    child = subprocess.Popen(command, stdout=log, stderr=log, env=env)
    try:
        wait_port(port, child, what)
        yield child.pid
    finally:
        child.terminate()
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
        log.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def drive(url: str, text: str, rate: float, seconds: float, slack_base: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench._drive", url, text, str(rate), str(seconds), slack_base, SECRET]
    out = subprocess.run(command, capture_output=True, check=True, timeout=seconds + 60).stdout
    raw: dict[str, Any] = json.loads(out)
    lat = raw["latencies_ms"]
    return {
        "sent": raw["sent"],
        "p50_ms": percentile(lat, 0.5),
        "p99_ms": percentile(lat, 0.99),
        "busy": raw["busy"],
        "errors": raw["errors"],
    }


class VirtualServiceWatch:
    """When the watched VirtualService was last seen with and without a fault route."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.changes: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._changed = threading.Condition()
        threading.Thread(target=self._run, name="vs-watch", daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            stream = watch.Watch().stream(
                self.kube.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                NAMESPACE,
                PLURAL,
                field_selector=f"metadata.name={SERVICE}",
                timeout_seconds=30,
            )
            for event in stream:
                spec = event["object"].get("spec") or {}
                faulted = any("fault" in route for route in spec.get("http") or [])
                with self._changed:
                    self.changes.append((time.perf_counter(), faulted))
                    self._changed.notify_all()
                if self._stop.is_set():
                    return

    def wait(self, since: float, faulted: bool, timeout: float = 30) -> float:
        """Seconds from ``since`` to the first change after it showing ``faulted``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for at, state in self.changes:
                    if at >= since and state == faulted:
                        return at - since
                if time.monotonic() > deadline:
                    raise SystemExit(f"the VirtualService never showed faulted={faulted}")
                self._changed.wait(0.5)

    def stop(self) -> None:
        self._stop.set()


class Slack:
    """Sends signed slash commands, as Slack does, to one meshbot."""

    def __init__(self, url: str, slack_base: str) -> None:
        self.http = httpx.Client(base_url=url, trust_env=False, timeout=10)
        self.slack_base = slack_base
        self.sent = 0

    def command(self, text: str) -> httpx.Response:
        self.sent += 1
        body = urlencode(
            {
                "team_id": "T0BENCH",
                "channel_id": "C0BENCH",
                "user_id": ADMIN,
                "user_name": "bench",
                "command": "/mesh",
                "text": text,
                "response_url": f"{self.slack_base}/response/effect-{self.sent}",
                "trigger_id": f"effect-{time.time_ns()}",
            }
        )
        from bench._drive import signed

        return self.http.post("/slack/events", content=body, headers=signed(body, SECRET))


def direct_fault(kube: Kube, store: Store, key: int) -> None:
    """The floor under `fault delay`: read the VirtualService, put a fault route first with a JSON
    Patch guarded by its resourceVersion, and write one row."""
    current: Any = kube.custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, SERVICE)
    first = dict(current["spec"]["http"][0])
    first["fault"] = {"delay": {"fixedDelay": "3s", "percentage": {"value": 100.0}}}
    patch = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": current["metadata"]["resourceVersion"]},
        {"op": "add", "path": "/spec/http/0", "value": first},
    ]
    kube.custom.patch_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, SERVICE, patch, _content_type=JSON_PATCH
    )
    with store.write() as session:
        claim_request_key(session=session, key=f"direct-{key}", now=utcnow(), ttl=timedelta(hours=1))


def direct_clear(kube: Kube) -> None:
    patch = [{"op": "remove", "path": "/spec/http/0"}]
    kube.custom.patch_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, SERVICE, patch, _content_type=JSON_PATCH
    )


def active_id(store: Store) -> str:
    with store.read() as session:
        (experiment,) = list_active(session=session)
    return experiment.id


def command_to_effect(
    slack: Slack, kube: Kube, store: Store, direct_store: Store, vs: VirtualServiceWatch, rounds: int
) -> dict[str, Any]:
    meshbot: list[float] = []
    direct: list[float] = []
    clears: list[float] = []
    for n in range(rounds):
        began = time.perf_counter()
        direct_fault(kube, direct_store, n)
        direct.append(vs.wait(began, True))
        direct_clear(kube)
        vs.wait(time.perf_counter(), False)
        began = time.perf_counter()
        if slack.command(f"fault delay 3s {SERVICE}.{NAMESPACE} for 10m").status_code != 200:
            raise SystemExit("meshbot refused the fault")
        meshbot.append(vs.wait(began, True))
        time.sleep(0.3)  # the store's "active" lands just after the patch
        began = time.perf_counter()
        slack.command(f"fault clear {active_id(store)}")
        clears.append(vs.wait(began, False))
        time.sleep(0.3)
    return {
        "meshbot_ms": statistics.median(meshbot) * 1000,
        "meshbot_samples_ms": [round(m * 1000, 1) for m in meshbot],
        "direct_ms": statistics.median(direct) * 1000,
        "clear_ms": statistics.median(clears) * 1000,
        "rounds": rounds,
    }


def clear_under_flood(
    slack: Slack,
    store: Store,
    vs: VirtualServiceWatch,
    url: str,
    slack_base: str,
    rate: float,
    seconds: float,
    fake: Any,
    repeats: int = 3,
) -> dict[str, Any]:
    """`fault clear` to effect while `status` floods the command lane, ``repeats`` times (one
    sample per flood: the fault must be started before the flood fills the lane)."""
    clears: list[float] = []
    floods: list[dict[str, Any]] = []
    for _ in range(repeats):
        settle(fake)
        slack.command(f"fault delay 3s {SERVICE}.{NAMESPACE} for 10m")
        vs.wait(time.perf_counter() - 5, True)
        time.sleep(0.5)
        experiment = active_id(store)
        result: dict[str, Any] = {}
        flood = threading.Thread(
            target=lambda into=result: into.update(drive(url, "status", rate, seconds, slack_base)),
            daemon=True,
        )
        flood.start()
        time.sleep(min(3.0, seconds / 2))  # well into the flood, with the lane full
        began = time.perf_counter()
        slack.command(f"fault clear {experiment}")
        clears.append(vs.wait(began, False) * 1000)
        flood.join(seconds + 60)
        floods.append(result)
    return {
        "clear_ms": statistics.median(clears),
        "clear_max_ms": max(clears),
        "samples_ms": clears,
        "flood": floods[-1],
        "flood_rate": rate,
    }


def settle(fake: Any, quiet: float = 1.5, limit: float = 60) -> None:
    """Wait until meshbot stops answering earlier commands (its queue drained)."""
    deadline = time.monotonic() + limit
    seen = -1
    while time.monotonic() < deadline:
        count = len(fake.calls)
        if count == seen:
            return
        seen = count
        time.sleep(quiet)


def run(rates: list[float], seconds: float, rounds: int) -> dict[str, Any]:
    from playground import runner  # noqa: F401 - fail early when the playground is missing
    from tests.slack.fake_slack import FakeSlack

    results: dict[str, Any] = {"rates": rates, "seconds": seconds, "ack": [], "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="meshbot-bench-") as tmp:
        directory = Path(tmp)
        fake = FakeSlack().start()
        try:
            pg_port, serve_port, bare_port = free_port(), free_port(), free_port()
            pg_cmd = [
                sys.executable,
                "-c",
                "from bot.cli import main; main()",
                "playground",
                "--seed",
                "article",
            ]
            pg_cmd += ["--port", str(pg_port), "--kubeconfig", str(directory / "kubeconfig")]
            with process(pg_cmd, pg_port, "the playground"):
                kube = for_url(f"http://127.0.0.1:{pg_port}")
                kube.core.create_namespace({"metadata": {"name": "meshbot"}})  # type: ignore[arg-type]
                # A VirtualService of the team's own, which the fault patches (not one meshbot creates).
                kube.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, ROUTE)
                (directory / "policy.yaml").write_text(POLICY)
                database = f"sqlite:///{directory / 'meshbot.db'}"
                store = Store.from_url(database)
                upgrade(store.engine)
                direct_store = Store.from_url(f"sqlite:///{directory / 'direct.db'}")
                upgrade(direct_store.engine)
                env = {
                    **os.environ,
                    "KUBECONFIG": str(directory / "kubeconfig"),
                    "MESHBOT_DATABASE_URL": database,
                    "MESHBOT_POLICY_FILE": str(directory / "policy.yaml"),
                    "MESHBOT_SLACK_API_URL": fake.api_url,
                    "MESHBOT_LIFECYCLE_ENABLED": "true",
                    "SLACK_BOT_TOKEN": "xoxb-1-bench",
                    "SLACK_SIGNING_SECRET": SECRET,
                    "NO_PROXY": "*",
                }
                serve_cmd = [sys.executable, "-c", "from bot.cli import main; main()", "serve"]
                serve_cmd += ["--port", str(serve_port)]
                bare_cmd = [sys.executable, "-m", "bench._bare", str(bare_port), SECRET]
                url = f"http://127.0.0.1:{serve_port}"
                bare_url = f"http://127.0.0.1:{bare_port}"
                with (
                    process(serve_cmd, serve_port, "meshbot serve", env) as serve_pid,
                    process(bare_cmd, bare_port, "the bare endpoint") as bare_pid,
                ):
                    _ready(url)
                    time.sleep(2)
                    results["rss_idle_mb"] = rss_mb(serve_pid)
                    results["rss_bare_mb"] = rss_mb(bare_pid)
                    slack = Slack(url, fake.base)
                    vs = VirtualServiceWatch(kube)
                    results["effect"] = command_to_effect(slack, kube, store, direct_store, vs, rounds)
                    for rate in rates:
                        bare = drive(bare_url, "help", rate, seconds, fake.base)
                        for text in ("status", "help"):
                            settle(fake)
                            measured = drive(url, text, rate, seconds, fake.base)
                            results["ack"].append(
                                {"command": text, "rate": rate, "bare": bare, "meshbot": measured}
                            )
                            print(_ack_line(results["ack"][-1]), flush=True)
                    results["clear_under_flood"] = clear_under_flood(
                        slack, store, vs, url, fake.base, max(rates), min(seconds, 6.0), fake
                    )
                    settle(fake)
                    time.sleep(3)
                    results["rss_after_mb"] = rss_mb(serve_pid)
                    vs.stop()
                store.dispose()
                direct_store.dispose()
        finally:
            fake.stop()
    return results


def _ready(url: str) -> None:
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=url, trust_env=False) as http:
        while time.monotonic() < deadline:
            if http.get("/readyz").status_code == 200:
                return
            time.sleep(0.2)
    raise SystemExit("meshbot serve never became ready (is the lifecycle leading?)")


def _ack_line(row: dict[str, Any]) -> str:
    m, b = row["meshbot"], row["bare"]
    return (
        f"  {row['command']:<6} {row['rate']:>5g}/s  meshbot p50 {m['p50_ms']:7.1f} ms"
        f"  p99 {m['p99_ms']:7.1f} ms"
        f"  | bare p50 {b['p50_ms']:6.1f} ms p99 {b['p99_ms']:6.1f} ms"
        f"  | busy {m['busy']}/{m['sent']} errors {m['errors']}"
    )


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench load", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 s per rate, 10 and 50/s, 2 rounds")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", default="10,50,200")
    parser.add_argument("--rounds", type=int, default=5, help="command-to-effect repetitions")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",")]
    seconds, rounds = args.seconds, args.rounds
    if args.quick:
        rates, seconds, rounds = [10.0, 50.0], 2.0, 2
    print(
        f"load: {rates} req/s for {seconds:g} s each, against meshbot serve and a bare endpoint", flush=True
    )
    return run(rates, seconds, rounds)
