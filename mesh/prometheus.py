"""Reading Istio's standard metrics from Prometheus: golden signals per service and per caller,
and the workload edge list Kiali would draw.

The traps, each handled once here:
- aborts never reach the destination's proxy: a caller's traffic is read as its own proxy reports
  it (``reporter="source"``), and only a caller no proxy of its own reports (no sidecar) is read
  as the destination saw it — summing both reporters would count requests twice, reading only the
  destination would hide every abort;
- gRPC failures are HTTP 200 with ``grpc_response_status`` other than 0;
- Prometheus answers "NaN" for rates over nothing, and nothing at all for series it lacks;
- a quantile in the top (+Inf) bucket is only "at least the highest finite bound".

The per-caller choice of reporter is why quantiles are computed here from the bucket rates, with
histogram_quantile's own interpolation, rather than by histogram_quantile over one reporter.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError
from urllib3.util.retry import Retry

from mesh.errors import MeshError

FAULT_FLAGS = ("FI", "DI")
QUANTILES = (0.5, 0.9, 0.99)
# After a failure, commands skip Prometheus this long instead of each waiting for its time-out.
BACKOFF_SECONDS = 15.0
_WINDOW = re.compile(r"[1-9][0-9]{0,3}[smhd]")
_LABEL_VALUE = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


class TelemetryUnavailable(MeshError):
    """Prometheus (or Kiali) did not answer usefully; ``str()`` says which and why, in one line."""


@dataclass(frozen=True)
class Latency:
    ms: float
    # The quantile fell in the +Inf bucket: the true value is above ``ms``.
    at_least: bool = False

    def text(self) -> str:
        if self.ms >= 1000:
            value = f"{self.ms / 1000:.1f}s"
        else:
            value = f"{self.ms:.0f}ms" if self.ms >= 10 else f"{self.ms:.1f}ms"
        return f">{value}" if self.at_least else value


@dataclass(frozen=True)
class ErrorCode:
    code: str  # "500", or "grpc 2" for a gRPC status on HTTP 200
    flags: str  # Envoy's response flags, "-" for none
    share: float  # of all the service's requests


@dataclass
class Signals:
    """Golden signals of one stream of requests (a service, or one caller of it)."""

    requests_per_second: float = 0.0
    failures_per_second: float = 0.0
    fault_per_second: float = 0.0
    errors: dict[tuple[str, str], float] = field(default_factory=dict)
    buckets: dict[float, float] = field(default_factory=dict)  # le → rate of requests at most le ms

    @property
    def success_rate(self) -> float | None:
        if self.requests_per_second <= 0:
            return None
        return 1 - self.failures_per_second / self.requests_per_second

    @property
    def fault_share(self) -> float | None:
        if self.requests_per_second <= 0:
            return None
        return self.fault_per_second / self.requests_per_second

    def latency(self, q: float) -> Latency | None:
        return histogram_quantile(q, self.buckets)

    def top_errors(self, limit: int = 3) -> list[ErrorCode]:
        total = self.requests_per_second or 1.0
        ranked = sorted(self.errors.items(), key=lambda kv: (-kv[1], kv[0]))
        return [ErrorCode(code, flags, rate / total) for (code, flags), rate in ranked[:limit]]

    def add(self, other: Signals) -> None:
        self.requests_per_second += other.requests_per_second
        self.failures_per_second += other.failures_per_second
        self.fault_per_second += other.fault_per_second
        for key, rate in other.errors.items():
            self.errors[key] = self.errors.get(key, 0.0) + rate
        for le, rate in other.buckets.items():
            self.buckets[le] = self.buckets.get(le, 0.0) + rate


@dataclass
class Caller:
    workload: str
    namespace: str
    # Which proxy's reports were read: "source" (its sidecar or gateway) or "destination" (none).
    reporter: str
    signals: Signals


@dataclass
class ServiceSignals:
    service: str
    namespace: str
    signals: Signals
    callers: list[Caller]


@dataclass(frozen=True)
class Edge:
    source: str
    source_namespace: str
    destination: str  # the destination workload
    service: str
    protocol: str
    requests_per_second: float
    error_rate: float
    fault_share: float


def histogram_quantile(q: float, buckets: dict[float, float]) -> Latency | None:
    """Prometheus's histogram_quantile over cumulative bucket rates (le → rate)."""
    if not buckets or not 0 <= q <= 1:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if math.isinf(bounds[-1]) else None
    if total is None or total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if math.isinf(le):
                finite = [b for b in bounds if not math.isinf(b)]
                return Latency(finite[-1] if finite else 0.0, at_least=True)
            if count == below:
                return Latency(le)
            return Latency(lower + (le - lower) * (rank - below) / (count - below))
        lower, below = le, count
    return None


def _failed(code: str, grpc: str) -> bool:
    return code.startswith("5") or code == "0" or grpc not in ("", "0")


def _error_key(code: str, grpc: str, flags: str) -> tuple[str, str]:
    return (f"grpc {grpc}" if code == "200" and grpc not in ("", "0") else code, flags or "-")


def _number(sample: dict[str, Any]) -> float:
    try:
        value = float(sample["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) else 0.0


# How much history sample_interval counts samples over: a few scrapes at the usual 15 s.
SAMPLING = "2m"
SAMPLING_SECONDS = 120.0


def check_window(window: str) -> str:
    if not _WINDOW.fullmatch(window):
        raise ValueError(f"window {window!r} must be a number and s, m, h or d, like 15m")
    return window


class Prometheus:
    """A Prometheus HTTP API through prometheus-api-client, with one time-out per request, no
    retries, and a pause after a failure so a dead Prometheus costs one time-out, not one each."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        verify_tls: bool = True,
        timeout: float = 5.0,
        clock: Any = time.monotonic,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {token}"} if token else None
        # Retries would multiply the time-out a command waits on a Prometheus that is already slow.
        self._client = PrometheusConnect(
            url=self.url,
            headers=headers,
            auth=basic_auth,
            disable_ssl=not verify_tls,
            retry=Retry(total=0, connect=0, read=0, redirect=0, status=0),
            timeout=timeout,
        )
        self._clock = clock
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._down_because = ""

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query, evaluated now or at ``at`` (Unix seconds)."""
        return self._ask(
            lambda: self._client.custom_query(promql, params={"time": at} if at is not None else None)
        )

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """A range query: each row's ``values`` are ``[unix seconds, "value"]`` pairs."""
        return self._ask(
            lambda: self._client.custom_query_range(
                promql,
                start_time=datetime.fromtimestamp(start, UTC),
                end_time=datetime.fromtimestamp(end, UTC),
                step=f"{max(1, int(step))}s",
            )
        )

    def _ask(self, call: Callable[[], Any]) -> list[dict[str, Any]]:
        with self._lock:
            if self._clock() < self._down_until:
                raise TelemetryUnavailable(self._down_because)
        try:
            result = call()
        except requests.Timeout:
            self._fail(f"Prometheus at {self.url} did not answer within {self.timeout:g}s")
        except requests.ConnectionError as exc:
            if _timed_out(exc):
                self._fail(f"Prometheus at {self.url} did not answer within {self.timeout:g}s")
            self._fail(f"Prometheus at {self.url} cannot be reached (connection refused or reset)")
        except PrometheusApiClientException as exc:
            self._fail(f"Prometheus at {self.url} refused the query: {str(exc)[:200]}")
        except (requests.RequestException, ValueError, KeyError) as exc:
            self._fail(f"Prometheus at {self.url} gave an unreadable answer ({type(exc).__name__})")
        return list(result or [])

    def _fail(self, why: str) -> None:
        with self._lock:
            self._down_until = self._clock() + BACKOFF_SECONDS
            self._down_because = why
        raise TelemetryUnavailable(why)

    # ------------------------------------------------------------------ what the verbs read

    def services(
        self, namespace: str, window: str, service: str | None = None, *, at: float | None = None
    ) -> list[ServiceSignals]:
        """Every service of the namespace that had requests in the window ending now (or ``at``),
        or the one named, with its callers, worst success rate first."""
        selector = _selector(namespace, service)
        window = check_window(window)
        requests_ = self.query(
            "sum by (reporter, source_workload, source_workload_namespace, destination_service_name, "
            "response_code, grpc_response_status, response_flags) "
            f"(rate(istio_requests_total{{{selector}}}[{window}]))",
            at,
        )
        buckets = self.query(
            "sum by (reporter, source_workload, source_workload_namespace, destination_service_name, le) "
            f"(rate(istio_request_duration_milliseconds_bucket{{{selector}}}[{window}]))",
            at,
        )
        return _services(namespace, requests_, buckets)

    def sample_interval(self, namespace: str, service: str, *, at: float) -> float | None:
        """Seconds between samples of the service's request counters around ``at`` (the slowest
        series), or None without samples: rates need two samples in their window, so the window
        follows the scrape interval — 15 s by default, 1 s in some test set-ups."""
        rows = self.query(
            f"min(count_over_time(istio_requests_total{{{_selector(namespace, service)}}}[{SAMPLING}]))",
            at,
        )
        if not rows:
            return None
        count = float(rows[0]["value"][1])
        return SAMPLING_SECONDS / count if count >= 2 else None

    def caller_series(
        self, namespace: str, service: str, *, start: float, end: float, step: float, window: str
    ) -> list[CallerSeries]:
        """Rate, success rate and p99 over time per caller of one service, each caller as its own
        proxy saw it when it has one (as in ``services``)."""
        selector = _selector(namespace, service)
        window = check_window(window)
        by = "source_workload, source_workload_namespace, reporter"
        total = self.query_range(
            f"sum by ({by}) (rate(istio_requests_total{{{selector}}}[{window}]))", start, end, step
        )
        failed = self.query_range(
            f'sum by ({by}) (rate(istio_requests_total{{{selector}, response_code=~"5..|0"}}[{window}]))',
            start,
            end,
            step,
        ) + self.query_range(
            f"sum by ({by}) (rate(istio_requests_total{{{selector}, "
            f'response_code!~"5..|0", grpc_response_status!~"0|"}}[{window}]))',
            start,
            end,
            step,
        )
        p99 = self.query_range(
            f"histogram_quantile(0.99, sum by ({by}, le) "
            f"(rate(istio_request_duration_milliseconds_bucket{{{selector}}}[{window}])))",
            start,
            end,
            step,
        )
        return _caller_series(total, failed, p99)

    def edges(self, namespace: str, window: str) -> list[Edge]:
        """Workload → workload edges into and within the namespace, as Kiali's workload graph has them."""
        window = check_window(window)
        rows = self.query(
            "sum by (reporter, source_workload, source_workload_namespace, destination_workload, "
            "destination_service_name, request_protocol, response_code, grpc_response_status, "
            f"response_flags) (rate(istio_requests_total{{{_selector(namespace, None)}}}[{window}]))"
        )
        return edges_from(rows)


def _timed_out(exc: requests.ConnectionError) -> bool:
    # Without retries urllib3 wraps a read time-out in MaxRetryError, which requests reports as a
    # ConnectionError rather than a Timeout.
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    # NewConnectionError (refused) subclasses ConnectTimeoutError for history's sake.
    return isinstance(reason, ReadTimeoutError | ConnectTimeoutError) and not isinstance(
        reason, NewConnectionError
    )


def _selector(namespace: str, service: str | None) -> str:
    for value in (namespace, service):
        if value is not None and not _LABEL_VALUE.fullmatch(value):
            raise ValueError(f"{value!r} is not a Kubernetes name")
    parts = [f'destination_service_namespace="{namespace}"']
    if service:
        parts.append(f'destination_service_name="{service}"')
    return ", ".join(parts)


def _by_caller(rows: Iterable[dict[str, Any]], *keys: str) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """Rows per (keys…, caller), each caller's rows from its own proxy when it reported any."""
    grouped: dict[tuple[str, ...], dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        metric = row.get("metric", {})
        key = (
            *(metric.get(k, "") for k in keys),
            metric.get("source_workload", "unknown"),
            metric.get("source_workload_namespace", ""),
        )
        grouped[key][metric.get("reporter", "destination")].append(row)
    chosen: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for key, by_reporter in grouped.items():
        reporter = "source" if by_reporter.get("source") else "destination"
        chosen[(*key, reporter)] = by_reporter.get(reporter, [])
    return chosen


def _signals_of(requests_: list[dict[str, Any]], buckets: list[dict[str, Any]]) -> Signals:
    signals = Signals()
    for row in requests_:
        metric, rate = row.get("metric", {}), _number(row)
        code, grpc = metric.get("response_code", ""), metric.get("grpc_response_status", "")
        flags = metric.get("response_flags", "-") or "-"
        signals.requests_per_second += rate
        if any(f in flags.split(",") for f in FAULT_FLAGS):
            signals.fault_per_second += rate
        if _failed(code, grpc):
            signals.failures_per_second += rate
            key = _error_key(code, grpc, flags)
            signals.errors[key] = signals.errors.get(key, 0.0) + rate
    for row in buckets:
        try:
            le = float(row.get("metric", {}).get("le", "nan"))
        except ValueError:
            continue
        if not math.isnan(le):
            signals.buckets[le] = signals.buckets.get(le, 0.0) + _number(row)
    return signals


def _services(
    namespace: str, requests_: list[dict[str, Any]], buckets: list[dict[str, Any]]
) -> list[ServiceSignals]:
    request_rows = _by_caller(requests_, "destination_service_name")
    bucket_rows = _by_caller(buckets, "destination_service_name")
    found: dict[str, ServiceSignals] = {}
    for (service, caller, caller_ns, reporter), rows in sorted(request_rows.items()):
        signals = _signals_of(rows, bucket_rows.get((service, caller, caller_ns, reporter), []))
        if signals.requests_per_second <= 0:
            continue
        entry = found.setdefault(service, ServiceSignals(service, namespace, Signals(), []))
        entry.signals.add(signals)
        entry.callers.append(Caller(caller, caller_ns, reporter, signals))
    for entry in found.values():
        entry.callers.sort(key=lambda c: (c.signals.success_rate or 0.0, c.workload))
    return sorted(found.values(), key=lambda s: (s.signals.success_rate or 0.0, s.service))


@dataclass(frozen=True)
class CallerSeries:
    """One caller's signals over time: (unix seconds, value) points; success and p99 skip the
    moments without requests."""

    workload: str
    reporter: str
    rate: list[tuple[float, float]]
    success: list[tuple[float, float]]
    p99_ms: list[tuple[float, float]]


def _points(row: dict[str, Any]) -> dict[float, float]:
    found: dict[float, float] = {}
    for stamp, value in row.get("values", []):
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if not math.isnan(number) and not math.isinf(number):
            found[float(stamp)] = number
    return found


def _caller_series(
    total: list[dict[str, Any]], failed: list[dict[str, Any]], p99: list[dict[str, Any]]
) -> list[CallerSeries]:
    def keyed(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[float, float]]:
        out: dict[tuple[str, str], dict[float, float]] = defaultdict(dict)
        for row in rows:
            metric = row.get("metric", {})
            key = (metric.get("source_workload", "unknown"), metric.get("reporter", "destination"))
            for stamp, value in _points(row).items():
                out[key][stamp] = out[key].get(stamp, 0.0) + value
        return out

    totals, failures, tails = keyed(total), keyed(failed), keyed(p99)
    reporters: dict[str, set[str]] = defaultdict(set)
    for workload, reporter in totals:
        reporters[workload].add(reporter)
    series = []
    for workload in sorted(reporters):
        # Aborts never reach the destination's proxy: a caller with a sidecar is read from its own.
        reporter = "source" if "source" in reporters[workload] else "destination"
        rate = totals[(workload, reporter)]
        bad = failures.get((workload, reporter), {})
        success = [(t, 1.0 - bad.get(t, 0.0) / r) for t, r in sorted(rate.items()) if r > 0]
        series.append(
            CallerSeries(
                workload,
                reporter,
                sorted(rate.items()),
                success,
                sorted(tails.get((workload, reporter), {}).items()),
            )
        )
    return series


def edges_from(rows: list[dict[str, Any]]) -> list[Edge]:
    """The edge list Kiali builds from istio_requests_total, one reporter per caller."""
    grouped = _by_caller(rows, "destination_workload", "destination_service_name", "request_protocol")
    edges = []
    for (destination, service, protocol, source, source_ns, _reporter), chosen in grouped.items():
        signals = _signals_of(chosen, [])
        if signals.requests_per_second <= 0:
            continue
        edges.append(
            Edge(
                source=source,
                source_namespace=source_ns,
                destination=destination or service,
                service=service,
                protocol=protocol or "http",
                requests_per_second=signals.requests_per_second,
                error_rate=1 - (signals.success_rate or 0.0),
                fault_share=signals.fault_share or 0.0,
            )
        )
    return sorted(edges, key=lambda e: (-e.error_rate, e.source, e.destination))
