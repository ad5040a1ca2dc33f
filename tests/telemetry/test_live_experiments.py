"""Experiments against a live Prometheus: each test has a playground cluster of its own and a real
Prometheus scraping that playground's traffic simulator every second, so what the card and the
guards read is what the cluster did while the fault ran — not a backfilled history.

- web-svc exposed through the gateway: a 40% abort for 45 s ends on time, warns before it starts
  that the gateway's traffic is not faulted, and its card reports the share the fault could
  reach (vote-bot's half of web-svc's traffic), with a chart uploaded through files_upload_v2;
- web-svc called by vote-bot only: a guard at 20% errors ends a 5-minute 40% abort within seconds;
- vote-bot without a sidecar: warned before it starts, and the card says it did not take effect.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import kubernetes.client
import pytest
from PIL import Image

from core.store import AuditQuery, query_events
from handlers.images import CALLER_COLOURS, CARD_CHART_SIZE, WINDOW_COLOUR
from mesh.injection import restart_patch
from mesh.prometheus import Prometheus
from playground import runner, seeds, traffic
from playground.runner import Playground
from tests.conftest import kube_client_for
from tests.slack.conftest import SlackClient, experiment
from tests.support.prometheus import PrometheusServer, running_prometheus

from .conftest import NS, _setup, cli_env, recorded_thread_ts, slack_app

METRICS_PATH = "/_playground/traffic/metrics"
# Enough scraped traffic before a fault for its baseline: rates need a few samples.
BASELINE_SECONDS = 12.0
# How close an observed share must be to what the cluster can deliver: a scrape at each edge of
# the window and Prometheus's extrapolation move it by a point or two.
SHARE_TOLERANCE = 4.0  # percentage points
# The chart waits this long after the end, to show the recovery (a minute in production).
TAIL_SECONDS = 20.0


@dataclass
class LiveMesh:
    playground: Playground
    prometheus: PrometheusServer


@contextmanager
def live_mesh(
    tmp: Path, *setup: str, after: Callable[[Playground], None] | None = None
) -> Iterator[LiveMesh]:
    """A playground set up with meshbot's own commands, scraped by a Prometheus of its own."""
    playground = runner.start("article")
    try:
        _setup(cli_env(playground, tmp), *setup)
        if after is not None:
            after(playground)
        with kube_client_for(playground) as api_client:
            kubernetes.client.CoreV1Api(api_client).create_namespace({"metadata": {"name": "meshbot"}})
        address = urlparse(playground.url).netloc
        with running_prometheus(scrape=[address], metrics_path=METRICS_PATH) as prometheus:
            yield LiveMesh(playground, prometheus)
    finally:
        playground.stop()


def wait_for_traffic(prometheus: PrometheusServer, seconds: float = BASELINE_SECONDS) -> None:
    """Until Prometheus has ``seconds`` of web-svc's traffic, so the card has a baseline."""
    reader = Prometheus(prometheus.url)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = reader.services(NS, "5s", "web-svc")
        if found and found[0].signals.requests_per_second > 0:
            time.sleep(seconds)
            return
        time.sleep(0.5)
    raise AssertionError("Prometheus never saw web-svc's traffic")


@contextmanager
def slack_for(mesh: LiveMesh, tmp: Path, **settings: Any) -> Iterator[SlackClient]:
    """`meshbot serve`'s app with the lifecycle leading, reading the live Prometheus."""
    with slack_app(
        mesh.playground.url,
        mesh.prometheus.url,
        tmp,
        run_lifecycle=True,
        lease_duration_seconds=3,
        lease_renew_deadline_seconds=2,
        lease_retry_seconds=0.2,
        lifecycle_sync_seconds=0.2,
        card_tail_seconds=TAIL_SECONDS,
        **settings,
    ) as client:
        yield client


def start_fault(slack: SlackClient, text: str) -> tuple[str, str]:
    """The experiment's id, and what its thread was first told (what was applied, and warnings)."""
    slack.command(text)
    parent = slack.fake.wait_for_call("chat.postMessage", "Stop now", timeout=20)[0]
    found = re.search(r"\bexp-[0-9a-z]+", parent.all_text())
    assert found, parent.all_text()
    details = slack.fake.wait_for_call("chat.postMessage", f"Experiment {found[0]}: ", timeout=20)[0]
    thread_ts = recorded_thread_ts(slack, found[0])
    assert details.params["thread_ts"] == thread_ts, "the details go into the fault's thread"
    return found[0], details.all_text()


def card_of(slack: SlackClient, experiment_id: str, timeout: float) -> str:
    thread_ts = recorded_thread_ts(slack, experiment_id)
    card = slack.fake.wait_for_call("chat.postMessage", "Report card", timeout=timeout)[0]
    assert card.params["thread_ts"] == thread_ts, "the card goes into the experiment's thread"
    return card.all_text()


def percent(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in {text!r}"
    return float(found[1])


# ------------------------------------------------------------------ the 45-second abort


INGRESS_NS = "istio-system"
INGRESS_HOST = "emoji-istio.test.net"


def _platform_ingress(playground: Playground) -> None:
    """web-svc exposed the way many platform teams do it: the Gateway and its VirtualService live in
    istio-system, routing to the service by its full name. Not meshbot's to patch (another
    namespace), so the gateway's traffic is out of a fault's reach, and the pre-flight says so."""
    seeds.create(
        playground.api,
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "public", "namespace": INGRESS_NS},
            "spec": {
                "selector": {"istio": "ingressgateway"},
                "servers": [
                    {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": [INGRESS_HOST]}
                ],
            },
        },
    )
    seeds.create(
        playground.api,
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "emoji-public", "namespace": INGRESS_NS},
            "spec": {
                "hosts": [INGRESS_HOST],
                "gateways": ["public"],
                "http": [{"route": [{"destination": {"host": f"web-svc.{NS}.svc.cluster.local"}}]}],
            },
        },
    )


@pytest.fixture(scope="module")
def exposed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveMesh]:
    """The write-up's mesh, injected, with web-svc also reached through the ingress gateway."""
    tmp = tmp_path_factory.mktemp("live-exposed")
    with live_mesh(tmp, f"inject {NS} --restart", after=_platform_ingress) as mesh:
        yield mesh


def test_a_45_second_abort_ends_on_time_with_a_card_of_what_it_could_reach(
    exposed: LiveMesh, tmp_path: Path
) -> None:
    wait_for_traffic(exposed.prometheus)
    with slack_for(exposed, tmp_path) as slack:
        experiment_id, details = start_fault(slack, f"fault abort 500 40% web-svc.{NS} for 45s")
        assert (
            f"istio-ingressgateway reaches web-svc.{NS} through a gateway whose VirtualService is not "
            "among those patched"
        ) in details, "the pre-flight warns that the gateway's traffic is not faulted"

        card = card_of(slack, experiment_id, timeout=45 + 30)
        ended = experiment(slack.store, experiment_id)  # type: ignore[attr-defined]
        assert (ended.state, ended.end_reason) == ("ended", "expired")
        assert abs((ended.ended_at - ended.expires_at).total_seconds()) < 3, "it ends on time"

        # vote-bot's sidecar aborts 40% of its calls; the gateway follows istio-system's route, which
        # the fault's VirtualService does not govern: only vote-bot's share of web-svc can be hit.
        reachable = traffic.VOTE_BOT_RPS / (traffic.VOTE_BOT_RPS + traffic.INGRESS_RPS)
        at_vote_bot = percent(r"observed ([0-9.]+)% at vote-bot → web-svc", card)
        overall = percent(rf"([0-9.]+)% of all traffic to web-svc\.{NS}", card)
        assert abs(at_vote_bot - 40) < SHARE_TOLERANCE, card
        assert abs(overall - 40 * reachable) < SHARE_TOLERANCE, card
        assert "istio-ingressgateway not reached" in card
        success = percent(r"← vote-bot: [^\n]*success 100\.0% → ([0-9.]+)%", card)
        assert abs(success - 60) < SHARE_TOLERANCE, "vote-bot's success fell as the fault said"

        slack.fake.wait_for_call("files.completeUploadExternal", timeout=TAIL_SECONDS + 30)
        (shared,) = slack.fake.shared_files()
        assert shared.thread_ts == ended.thread_ts and shared.filename == f"report-{experiment_id}.png"
        assert shared.content is not None
        assert_success_dips_inside_the_shaded_window(shared.content, fault_seconds=45)
        update = slack.fake.wait_for_call("chat.update", "expired")[0]
        assert update.params["ts"] == ended.thread_ts


def _hex(colour: str) -> tuple[int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


def assert_success_dips_inside_the_shaded_window(png: bytes, fault_seconds: float) -> None:
    """The chart as a person reads it. In the middle panel (success %) the fault's window is
    shaded; vote-bot's line is level before it, falls only once the fault has started, and rises
    again in the tail after it; the gateway's line stays up. Callers are drawn in name order."""
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == CARD_CHART_SIZE
    rgb = image.convert("RGB")
    width, height = image.size
    shade, gateway, vote_bot = _hex(WINDOW_COLOUR), _hex(CALLER_COLOURS[0]), _hex(CALLER_COLOURS[1])
    # The three panels share the shading: the middle panel is the second run of shaded rows (a
    # level line may hide the shade over a few rows: those gaps do not split a run).
    shaded_rows = [y for y in range(height) if any(rgb.getpixel((x, y)) == shade for x in range(width))]
    runs: list[list[int]] = []
    for y in shaded_rows:
        if runs and y <= runs[-1][-1] + 8:
            runs[-1].append(y)
        else:
            runs.append([y])
    assert len(runs) == 3, "three panels, each with the fault's window shaded"
    top, bottom = runs[1][0], runs[1][-1] + 1
    pixels = [[rgb.getpixel((x, y)) for x in range(width)] for y in range(top, bottom)]
    shaded = sorted({x for row in pixels for x, p in enumerate(row) if p == shade})
    assert shaded, "the fault's window is shaded"
    left, right = shaded[0], shaded[-1]
    assert right - left > width // 4, "the window spans a good part of the time axis"

    def line(colour: tuple[int, int, int]) -> dict[int, int]:
        """x → the line's lowest point in that column (image rows grow downwards)."""
        found: dict[int, int] = {}
        for y, row in enumerate(pixels):
            for x, p in enumerate(row):
                if p == colour:
                    found[x] = max(found.get(x, y), y)
        return found

    votes, gateways = line(vote_bot), line(gateway)
    per_second = (right - left) / fault_seconds
    before = [y for x, y in votes.items() if x < left - 2]
    assert before, "vote-bot's line runs through the baseline"
    full = max(before)
    lowest = max(votes.values())
    drop = lowest - full
    assert drop > (bottom - top) // 5, "vote-bot's success falls visibly (to about 60%)"
    # Rates are read over a window of a few samples (sample_interval), so a few seconds in the line
    # is down for the rest of the fault, and a few seconds after it back up: not smeared across.
    settled = [y for x, y in votes.items() if left + 6 * per_second <= x <= right - 2]
    recovered = [y for x, y in votes.items() if x >= right + 6 * per_second]
    assert settled and recovered, "the line runs through the fault and the tail"
    assert min(settled) >= full + 0.8 * drop, "down for the whole fault once it has started"
    assert max(recovered) <= full + 0.2 * drop, "and back up in the tail"
    assert max(gateways.values()) - min(gateways.values()) <= 3, "the gateway's line stays level"


# ------------------------------------------------------------------ a guard


@pytest.fixture(scope="module")
def mesh_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveMesh]:
    """Injected, not exposed: vote-bot is web-svc's only caller, so a 40% abort is 40% errors."""
    with live_mesh(tmp_path_factory.mktemp("live-mesh-only"), f"inject {NS} --restart") as mesh:
        yield mesh


def test_a_guard_at_20_percent_errors_ends_a_40_percent_abort_long_before_its_5_minutes(
    mesh_only: LiveMesh, tmp_path: Path
) -> None:
    wait_for_traffic(mesh_only.prometheus, seconds=3)
    with slack_for(mesh_only, tmp_path, guard_interval=1.0) as slack:
        experiment_id, _ = start_fault(
            slack, f'fault abort 500 40% web-svc.{NS} for 5m guard="error_rate(web-svc) > 20% window=10s"'
        )
        update = slack.fake.wait_for_call("chat.update", "guard", timeout=60)[0]
        ended = experiment(slack.store, experiment_id)  # type: ignore[attr-defined]
        assert (ended.state, ended.end_reason) == ("ended", "guard tripped")
        ran = (ended.ended_at - ended.started_at).total_seconds()
        assert ran < 60, f"the guard ended it after {ran:.0f} s, not the 5 minutes"
        assert update.params["ts"] == ended.thread_ts

        said = slack.fake.wait_for_call("chat.postMessage", "2 evaluations in a row", timeout=10)[0]
        assert said.params["thread_ts"] == ended.thread_ts
        measured = percent(rf"error_rate\(web-svc\.{NS}\) = ([0-9.]+)%", said.all_text())
        assert 20 < measured <= 40 + SHARE_TOLERANCE, said.all_text()
        with slack.store.read() as session:  # type: ignore[attr-defined]
            rows = query_events(session=session, query=AuditQuery(verb="guard")).events
        assert [r.experiment_id for r in rows] == [experiment_id]
        card = card_of(slack, experiment_id, timeout=30)
        assert "stopped by its guard" in card.splitlines()[0], card


# ------------------------------------------------------------------ callers without a sidecar


def _roll_web_only(playground: Playground) -> None:
    # `inject` without --restart, then only web rolled: web gets a sidecar, vote-bot keeps none.
    with kube_client_for(playground) as api_client:
        kubernetes.client.AppsV1Api(api_client).patch_namespaced_deployment(
            "web", NS, restart_patch(datetime.now(UTC))
        )


@pytest.fixture(scope="module")
def sidecarless_caller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveMesh]:
    with live_mesh(tmp_path_factory.mktemp("live-sidecarless"), f"inject {NS}", after=_roll_web_only) as mesh:
        yield mesh


def test_a_fault_whose_caller_has_no_sidecar_is_warned_and_its_card_says_it_did_not_take_effect(
    sidecarless_caller: LiveMesh, tmp_path: Path
) -> None:
    wait_for_traffic(sidecarless_caller.prometheus, seconds=3)
    with slack_for(sidecarless_caller, tmp_path) as slack:
        experiment_id, details = start_fault(slack, f"fault abort 500 40% web-svc.{NS} for 15s")
        assert "pods without a sidecar won't see this fault when they call web-svc" in details
        assert "vote-bot" in details

        card = card_of(slack, experiment_id, timeout=15 + 30)
        assert "Proof of effect: Did not take effect" in card, card
        assert "callers without a sidecar (vote-bot) bypass it" in card, card
        # The traffic was there all along (web's sidecar reports it): it just met no fault.
        assert percent(r"web-svc: [0-9.]+ → ([0-9.]+) rps", card) > 5
