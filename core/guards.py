"""Guards: conditions on live telemetry that end an experiment early, e.g.
``error_rate(web-svc) > 20%``.

The grammar lives in core, not in the fault verb, because the policy file's per-namespace
defaults are parsed by the same rules as a person's ``guard=`` and both must agree.

    guard    := metric [ "(" service ["." namespace] ")" ] op threshold [ "window=" window ]
    metric   := error_rate | success_rate | p50 | p90 | p99 | rps
    op       := > | >= | < | <=
    threshold:= <n>% (rates) | <duration> (p50/p90/p99) | <n> (rps)

No service means the experiment's target; a service names collateral damage elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

from core.durations import DurationError, duration

Metric = Literal["error_rate", "success_rate", "p50", "p90", "p99", "rps"]
Op = Literal[">", ">=", "<", "<="]
METRICS: tuple[Metric, ...] = ("error_rate", "success_rate", "p50", "p90", "p99", "rps")
DEFAULT_WINDOW = "1m"
# Longer windows would let a guard keep tripping on damage from before the fault started.
_WINDOW = re.compile(r"([1-9][0-9]{0,2})(s|m)")
_NAME = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
_GUARD = re.compile(
    rf"(?P<metric>[a-z_0-9]+)\s*(?:\(\s*(?P<service>{_NAME})(?:\.(?P<namespace>{_NAME}))?\s*\))?"
    r"\s*(?P<op>>=|<=|>|<)\s*(?P<threshold>[0-9][0-9.]*[a-z%]*)"
    r"(?:\s+window=(?P<window>[0-9a-z]+))?"
)
MAX_GUARDS = 5


class GuardError(ValueError):
    """The guard text does not follow the grammar or its bounds; ``str()`` is one line."""


@dataclass(frozen=True)
class Guard:
    metric: Metric
    op: Op
    # A fraction for rates (0.2 for 20%), milliseconds for quantiles, requests/s for rps.
    threshold: float
    service: str | None = None  # None: the experiment's target
    namespace: str | None = None  # None: the experiment's namespace
    window: str = DEFAULT_WINDOW

    def breached(self, value: float) -> bool:
        return {
            ">": value > self.threshold,
            ">=": value >= self.threshold,
            "<": value < self.threshold,
            "<=": value <= self.threshold,
        }[self.op]

    def subject(self, target_service: str = "the target") -> str:
        where = self.service or target_service
        if self.namespace:
            where = f"{where}.{self.namespace}"
        return f"{self.metric}({where})"

    def show(self, value: float) -> str:
        return format_value(self.metric, value)

    def text(self) -> str:
        where = f"({self.service}{'.' + self.namespace if self.namespace else ''})" if self.service else ""
        window = f" window={self.window}" if self.window != DEFAULT_WINDOW else ""
        return f"{self.metric}{where} {self.op} {self.show(self.threshold)}{window}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Guard:
        return cls(**data)


def format_value(metric: Metric, value: float) -> str:
    if metric in ("error_rate", "success_rate"):
        return f"{value * 100:.1f}%".replace(".0%", "%")
    if metric == "rps":
        return f"{value:g}"
    return f"{value / 1000:g}s" if value >= 1000 else f"{value:g}ms"


def parse_guard(text: str) -> Guard:
    """One guard from its text; GuardError names what is wrong."""
    found = _GUARD.fullmatch(text.strip())
    if found is None:
        raise GuardError(
            f"guard {text!r} must look like error_rate(web-svc) > 20% "
            "(metric, optional service in parentheses, >, >=, < or <=, a threshold, optional window=)"
        )
    metric = found["metric"]
    if metric not in METRICS:
        raise GuardError(f"unknown guard metric {metric!r}: use {', '.join(METRICS)}")
    raw = found["threshold"]
    threshold = _threshold(metric, raw)
    window = found["window"] or DEFAULT_WINDOW
    bounded = _WINDOW.fullmatch(window)
    if (
        bounded is None
        or (bounded[2] == "m" and int(bounded[1]) > 30)
        or (bounded[2] == "s" and int(bounded[1]) < 5)
    ):
        raise GuardError(f"guard window {window!r} must be between 5s and 30m, like 30s or 2m")
    return Guard(
        metric=cast(Metric, metric),  # checked against METRICS above
        op=cast(Op, found["op"]),  # the pattern allows only the four
        threshold=threshold,
        service=found["service"],
        namespace=found["namespace"],
        window=window,
    )


def _threshold(metric: str, raw: str) -> float:
    if metric in ("error_rate", "success_rate"):
        number = raw[:-1] if raw.endswith("%") else None
        if number is None or not re.fullmatch(r"[0-9]{1,3}(\.[0-9]{1,2})?", number):
            raise GuardError(f"{metric} needs a percentage like 20%, not {raw!r}")
        value = float(number)
        if not 0 <= value <= 100:
            raise GuardError(f"{metric} threshold {raw} must be between 0% and 100%")
        return value / 100
    if metric == "rps":
        if not re.fullmatch(r"[0-9]{1,6}(\.[0-9]{1,3})?", raw):
            raise GuardError(f"rps needs a number of requests per second like 5, not {raw!r}")
        return float(raw)
    try:
        latency = duration(raw)
    except DurationError:
        raise GuardError(f"{metric} needs a duration like 500ms or 2s, not {raw!r}") from None
    ms = latency.total_seconds() * 1000
    if not 0 < ms <= 3_600_000:
        raise GuardError(f"{metric} threshold {raw} must be above 0 and at most 1h")
    return ms


def parse_guards(texts: list[str]) -> list[Guard]:
    if len(texts) > MAX_GUARDS:
        raise GuardError(f"at most {MAX_GUARDS} guards per fault, got {len(texts)}")
    return [parse_guard(t) for t in texts]
