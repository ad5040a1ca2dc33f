"""What a guard reads: one number per guard from Prometheus, and whether it is over the line.

Deciding when two breaches in a row end an experiment is the lifecycle's (bot/lifecycle/guards);
ending it is domain.ending's, like every other trigger.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.guards import Guard, format_value
from core.store import Experiment
from mesh.prometheus import Prometheus, Signals


@dataclass(frozen=True)
class Reading:
    guard: Guard
    subject: str  # "error_rate(web-svc.emojivoto-istio)"
    # None: no requests in the window, so there is nothing to judge (never a breach).
    value: float | None

    @property
    def breached(self) -> bool:
        return self.value is not None and self.guard.breached(self.value)

    def text(self) -> str:
        if self.value is None:
            return f"{self.subject}: no requests in the last {self.guard.window}"
        shown = format_value(self.guard.metric, self.value)
        line = f"{self.guard.op} {format_value(self.guard.metric, self.guard.threshold)}"
        return f"{self.subject} = {shown} ({'over' if self.breached else 'within'} the guard's {line})"


def guards_of(experiment: Experiment) -> list[Guard]:
    return [Guard.from_json(g) for g in experiment.guards or []]


def read(prometheus: Prometheus, guard: Guard, experiment: Experiment) -> Reading:
    """TelemetryUnavailable when Prometheus cannot answer."""
    namespace = guard.namespace or experiment.namespace
    service = guard.service or experiment.service
    found = prometheus.services(namespace, guard.window, service)
    signals = found[0].signals if found else Signals()
    return Reading(guard, f"{guard.metric}({service}.{namespace})", value_of(guard, signals))


def value_of(guard: Guard, signals: Signals) -> float | None:
    if guard.metric == "rps":
        return signals.requests_per_second
    success = signals.success_rate
    if guard.metric == "error_rate":
        return None if success is None else 1 - success
    if guard.metric == "success_rate":
        return success
    latency = signals.latency({"p50": 0.5, "p90": 0.9, "p99": 0.99}[guard.metric])
    return None if latency is None else latency.ms
