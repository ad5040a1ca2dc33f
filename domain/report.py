"""The report card of an ended experiment: the window before it (baseline) against the window it
ran, for the target and each caller, and whether the fault observably took effect.

Proof of effect reads the fault-flagged share (Envoy's FI/DI response flags) per caller, so it
says what the fault reached, not what was configured: a caller without a sidecar never carries
the flag, and traffic a VirtualService does not govern (a gateway's own route) dilutes the total.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.store import Experiment
from mesh.prometheus import CallerSeries, Prometheus, ServiceSignals, Signals, TelemetryUnavailable

# Longer baselines would average over unrelated history and cost the query more.
MAX_WINDOW = timedelta(minutes=15)
# Rates need two samples: 30 s covers a 15 s scrape (or backfill step).
MIN_WINDOW = timedelta(seconds=30)
# Points per series: a readable line without asking Prometheus for thousands of samples.
CHART_POINTS = 120
# Prometheus's default scrape interval: assumed when the samples cannot tell.
DEFAULT_SCRAPE_SECONDS = 15.0
# An observed share within this much of the configured one counts as "as configured".
TOLERANCE = 0.25


@dataclass(frozen=True)
class Card:
    text: str
    # Whether any fault-flagged request was seen: False with telemetry means it did not take effect.
    took_effect: bool | None


def _ran(experiment: Experiment, ended_at: datetime) -> tuple[datetime, timedelta]:
    """When it started, and the length of the windows compared: as long as it ran, bounded."""
    started = experiment.started_at or experiment.created_at
    return started, min(max(ended_at - started, MIN_WINDOW), MAX_WINDOW)


def _window(experiment: Experiment, ended_at: datetime) -> tuple[datetime, datetime, str]:
    started, length = _ran(experiment, ended_at)
    return started, ended_at, f"{max(1, int(length.total_seconds()))}s"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _row(name: str, before: Signals | None, during: Signals) -> str:
    def lat(s: Signals | None, q: float) -> str:
        found = s.latency(q) if s is not None else None
        return found.text() if found is not None else "—"

    b = before or Signals()
    return (
        f"{name}: {b.requests_per_second:.1f} → {during.requests_per_second:.1f} rps, "
        f"success {_pct(b.success_rate)} → {_pct(during.success_rate)}, "
        f"p50 {lat(before, 0.5)} → {lat(during, 0.5)}, p99 {lat(before, 0.99)} → {lat(during, 0.99)}, "
        f"fault-flagged {_pct(during.fault_share)}"
    )


def configured(experiment: Experiment) -> tuple[str, float]:
    p = experiment.parameters or {}
    amount = p.get("http_status") or p.get("grpc_status") or (f"{p['delay_ms']}ms" if "delay_ms" in p else "")
    what = f"{experiment.kind} {amount}".strip()
    return what, float(p.get("percentage", 100.0)) / 100


def proof_of_effect(experiment: Experiment, during: ServiceSignals | None) -> tuple[str, bool]:
    what, share = configured(experiment)
    target = f"{experiment.service}.{experiment.namespace}"
    if during is None or during.signals.requests_per_second <= 0:
        return f"Did not take effect: no requests reached {target} while it ran.", False
    flagged = [c for c in during.callers if (c.signals.fault_share or 0) > 0]
    unflagged_sidecarless = [c.workload for c in during.callers if c.reporter == "destination"]
    if not flagged:
        reasons = []
        if unflagged_sidecarless:
            reasons.append(f"callers without a sidecar ({', '.join(unflagged_sidecarless)}) bypass it")
        if experiment.parameters.get("headers"):
            reasons.append("no request carried the header it matches")
        reasons.append("or only a route this VirtualService does not govern (a gateway's) carried traffic")
        return f"Did not take effect: no request to {target} was fault-flagged — {'; '.join(reasons)}.", False
    parts = [
        f"observed {_pct(c.signals.fault_share)} at {c.workload} → {experiment.service}" for c in flagged
    ]
    overall = during.signals.fault_share or 0.0
    sentence = f"{what} at {share * 100:g}%: {'; '.join(parts)}; {_pct(overall)} of all traffic to {target}"
    missed = [c.workload for c in during.callers if (c.signals.fault_share or 0) == 0]
    if missed:
        sentence += f" ({', '.join(missed)} not reached: no sidecar, or a route this fault does not govern)"
    return sentence + ".", True


def report_card(
    prometheus: Prometheus | None, experiment: Experiment, *, ended_at: datetime, how: str
) -> Card:
    target = f"{experiment.service}.{experiment.namespace}"
    head = f"📋 Report card for {experiment.id} ({experiment.kind} on {target}, {how})"
    if prometheus is None:
        return Card(
            f"{head}\nNot measured: no Prometheus is configured, so neither its effect nor the "
            "baseline could be read. What it changed in the cluster is in the thread above.",
            None,
        )
    started, ended, window = _window(experiment, ended_at)
    try:
        before = prometheus.services(experiment.namespace, window, experiment.service, at=started.timestamp())
        during = prometheus.services(experiment.namespace, window, experiment.service, at=ended.timestamp())
    except TelemetryUnavailable as exc:
        return Card(f"{head}\nNot measured: {exc}. Its effect and the baseline are unknown.", None)
    base = before[0] if before else None
    run = during[0] if during else None
    lines = [head, f"Baseline: the {window} before it started; during: the {window} it ran."]
    if run is not None:
        lines.append(_row(experiment.service, base.signals if base else None, run.signals))
        before_callers = {c.workload: c.signals for c in base.callers} if base else {}
        lines += [_row(f"  ← {c.workload}", before_callers.get(c.workload), c.signals) for c in run.callers]
    proof, took = proof_of_effect(experiment, run)
    lines.append(f"Proof of effect: {proof}")
    return Card("\n".join(lines), took)


@dataclass(frozen=True)
class ChartData:
    series: list[CallerSeries]
    fault_start: float  # Unix seconds
    fault_end: float


def chart_data(
    prometheus: Prometheus,
    experiment: Experiment,
    *,
    ended_at: datetime,
    now: datetime,
    tail: timedelta,
) -> ChartData:
    """The card chart's series: a baseline as long as the run (capped), the run, and ``tail``
    after it, up to now (MESHBOT_CARD_TAIL_SECONDS). Raises TelemetryUnavailable."""
    started, length = _ran(experiment, ended_at)
    start, end = started - length, min(ended_at + tail, max(now, ended_at))
    step = max(1.0, (end - start).total_seconds() / CHART_POINTS)
    # Each point is a rate over a trailing window, so a long window draws the fault's effect late
    # and smeared; too short a window holds under two samples and breaks the line into gaps.
    interval = prometheus.sample_interval(experiment.namespace, experiment.service, at=ended_at.timestamp())
    window = f"{math.ceil(max(step * 2, (interval or DEFAULT_SCRAPE_SECONDS) * 2.5))}s"
    series = prometheus.caller_series(
        experiment.namespace,
        experiment.service,
        start=start.timestamp(),
        end=end.timestamp(),
        step=step,
        window=window,
    )
    return ChartData(series, started.timestamp(), ended_at.timestamp())
