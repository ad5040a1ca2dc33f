"""A traffic simulator of the write-up's emojivoto mesh: Istio's standard metrics, as the sidecars
and gateways of the playground cluster would report them.

vote-bot calls web-svc over HTTP, the ingress gateway sends web-svc the traffic of exposed hosts,
and every request web serves calls emoji-svc (gRPC) and every other one voting-svc (gRPC), which
fails a share of votes with a gRPC status like the real one does. What a caller sees follows the
cluster as it is now: only a caller with a sidecar (or the gateway) applies a VirtualService's
fault, and only for the routes that VirtualService governs for it (mesh-bound for sidecars,
gateway-bound for the gateway); aborts never reach the destination's proxy; a pod without a
sidecar reports nothing.

Counts are expected values, not random draws, so a backfilled history gives exact numbers.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from playground.api import ClusterApi
from playground.meta import Obj

NAMESPACE = "emojivoto-istio"
GATEWAY_WORKLOAD = ("istio-ingressgateway", "istio-system")
# Istio's default duration buckets (ms), as the sidecars export them.
BUCKETS_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000)
# Base latency of each service's successful requests: (milliseconds, share).
LATENCY_MS = {
    "web-svc": ((3.0, 0.5), (8.0, 0.3), (20.0, 0.15), (80.0, 0.05)),
    "emoji-svc": ((0.8, 0.6), (3.0, 0.35), (12.0, 0.05)),
    "voting-svc": ((0.8, 0.5), (3.0, 0.4), (30.0, 0.1)),
}
VOTE_BOT_RPS = 10.0
INGRESS_RPS = 10.0
# emojivoto's voting-svc fails votes for a few emoji with gRPC UNKNOWN (2), over HTTP 200.
VOTING_GRPC_ERROR_SHARE = 0.1
GRPC_STATUS = {"OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4,
               "NOT_FOUND": 5, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "INTERNAL": 13,
               "UNAVAILABLE": 14, "UNAUTHENTICATED": 16}  # fmt: skip

VS_KEY = ("networking.istio.io", "virtualservices")
POD_KEY = ("", "pods")


@dataclass(frozen=True)
class Fault:
    abort_share: float = 0.0
    abort_http: int = 500
    abort_grpc: int | None = None
    delay_share: float = 0.0
    delay_ms: float = 0.0


@dataclass(frozen=True)
class Call:
    """One caller's traffic to one service."""

    source: tuple[str, str]  # workload, namespace
    service: str
    namespace: str
    workload: str
    protocol: str  # http | grpc
    rps: float
    source_proxy: bool
    destination_proxy: bool
    fault: Fault
    grpc_error_share: float = 0.0


@dataclass(frozen=True)
class Flow:
    """One series of istio_requests_total and its histogram: labels and requests per second over
    the latency distribution."""

    labels: tuple[tuple[str, str], ...]
    rps: float
    latency: tuple[tuple[float, float], ...]


# ---------------------------------------------------------------- reading the cluster


def _has_sidecar(api: ClusterApi, namespace: str, workload: str) -> bool:
    pods, _ = api.store.list(POD_KEY, namespace)
    mine = [p for p in pods if p["metadata"].get("name", "").startswith(f"{workload}-")]
    return any(
        c.get("name") == "istio-proxy"
        for p in mine
        for c in [*p["spec"].get("containers", []), *p["spec"].get("initContainers", [])]
    )


def _runs(api: ClusterApi, namespace: str, workload: str) -> bool:
    pods, _ = api.store.list(POD_KEY, namespace)
    return any(p["metadata"].get("name", "").startswith(f"{workload}-") for p in pods)


def _names_service(host: str, service: str, namespace: str) -> bool:
    return host in (service, f"{service}.{namespace}", f"{service}.{namespace}.svc.cluster.local")


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(ms|s|m|h)", text or "")
    if not match:
        return 0.0
    return float(match[1]) * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}[match[2]]


def _fault_of(route: Obj) -> Fault:
    fault = route.get("fault") or {}
    abort, delay = fault.get("abort") or {}, fault.get("delay") or {}
    grpc = abort.get("grpcStatus")
    return Fault(
        # A missing percentage means 0% in current Istio.
        abort_share=float((abort.get("percentage") or {}).get("value", 0)) / 100 if abort else 0.0,
        abort_http=int(abort.get("httpStatus", 500)),
        abort_grpc=GRPC_STATUS.get(str(grpc).upper(), 2) if grpc is not None else None,
        delay_share=float((delay.get("percentage") or {}).get("value", 0)) / 100 if delay else 0.0,
        delay_ms=_duration_ms(str(delay.get("fixedDelay", ""))),
    )


def _governs(vs: Obj, via_gateway: bool) -> bool:
    gateways = vs.get("spec", {}).get("gateways") or ["mesh"]
    return any(g != "mesh" for g in gateways) if via_gateway else "mesh" in gateways


def fault_for(api: ClusterApi, service: str, namespace: str, *, via_gateway: bool) -> Fault:
    """The fault a caller meets on its route to the service: the first VirtualService that governs
    the caller's routes to that host (they are not merged), its first route that plain traffic
    (no test headers) takes."""
    items, _ = api.store.list(VS_KEY, namespace)
    for vs in sorted(items, key=lambda o: o["metadata"].get("creationTimestamp", "")):
        spec = vs.get("spec", {})
        if not _governs(vs, via_gateway):
            continue
        for route in spec.get("http") or []:
            if any(m.get("headers") for m in route.get("match") or []):
                continue
            targets = [d.get("destination", {}).get("host", "") for d in route.get("route") or []]
            if any(_names_service(t, service, namespace) for t in targets):
                return _fault_of(route)
        if not via_gateway and any(_names_service(h, service, namespace) for h in spec.get("hosts") or []):
            return Fault()
    return Fault()


def _exposed(api: ClusterApi, service: str, namespace: str) -> bool:
    items, _ = api.store.list(VS_KEY, None)
    return any(
        _governs(vs, True)
        and any(
            _names_service(d.get("destination", {}).get("host", ""), service, namespace)
            for r in vs.get("spec", {}).get("http") or []
            for d in r.get("route") or []
        )
        for vs in items
    )


def calls(api: ClusterApi, namespace: str = NAMESPACE) -> list[Call]:
    """The mesh's traffic as the cluster shapes it now."""
    with api.store.lock:
        if not _runs(api, namespace, "web"):
            return []
        web_proxy = _has_sidecar(api, namespace, "web")
        found: list[Call] = []
        if _runs(api, namespace, "vote-bot"):
            proxy = _has_sidecar(api, namespace, "vote-bot")
            found.append(
                Call(("vote-bot", namespace), "web-svc", namespace, "web", "http", VOTE_BOT_RPS,
                     proxy, web_proxy,
                     fault_for(api, "web-svc", namespace, via_gateway=False) if proxy else Fault())
            )  # fmt: skip
        if _runs(api, *reversed(GATEWAY_WORKLOAD)) and _exposed(api, "web-svc", namespace):
            found.append(
                Call(GATEWAY_WORKLOAD, "web-svc", namespace, "web", "http", INGRESS_RPS, True, web_proxy,
                     fault_for(api, "web-svc", namespace, via_gateway=True))
            )  # fmt: skip
        # Only requests that reach web make web call its backends.
        served = sum(c.rps * (1 - c.fault.abort_share) for c in found)
        for service, workload, factor, errors in (
            ("emoji-svc", "emoji", 1.0, 0.0),
            ("voting-svc", "voting", 0.5, VOTING_GRPC_ERROR_SHARE),
        ):
            if served <= 0 or not _runs(api, namespace, workload):
                continue
            fault = fault_for(api, service, namespace, via_gateway=False) if web_proxy else Fault()
            found.append(
                Call(("web", namespace), service, namespace, workload, "grpc", served * factor, web_proxy,
                     _has_sidecar(api, namespace, workload), fault, errors)
            )  # fmt: skip
        return found


# ---------------------------------------------------------------- series


def _labels(
    call: Call, reporter: str, code: int, grpc: int | None, flags: str
) -> tuple[tuple[str, str], ...]:
    source, source_ns = call.source
    return (
        ("reporter", reporter),
        ("source_workload", source),
        ("source_workload_namespace", source_ns),
        ("source_canonical_service", source),
        ("destination_workload", call.workload),
        ("destination_workload_namespace", call.namespace),
        ("destination_service", f"{call.service}.{call.namespace}.svc.cluster.local"),
        ("destination_service_name", call.service),
        ("destination_service_namespace", call.namespace),
        ("destination_canonical_service", call.workload),
        ("request_protocol", call.protocol),
        ("response_code", str(code)),
        ("grpc_response_status", "" if grpc is None else str(grpc)),
        ("response_flags", flags),
        ("connection_security_policy", "mutual_tls" if reporter == "destination" else "unknown"),
    )


def flows(call: Call) -> list[Flow]:
    """The series one call produces, as each proxy on its path reports it."""
    base = LATENCY_MS[call.service]
    ok_grpc = 0 if call.protocol == "grpc" else None
    fault = call.fault
    reached = call.rps * (1 - fault.abort_share)
    outcomes: list[tuple[float, int, int | None]] = []  # (share of reached, code, grpc status)
    if call.grpc_error_share:
        outcomes.append((call.grpc_error_share, 200, 2))
    outcomes.append((1 - call.grpc_error_share, 200, ok_grpc))
    result: list[Flow] = []
    if fault.abort_share and call.source_proxy:
        code, grpc = (200, fault.abort_grpc) if fault.abort_grpc is not None else (fault.abort_http, None)
        result.append(
            Flow(_labels(call, "source", code, grpc, "FI"), call.rps * fault.abort_share, ((0.2, 1.0),))
        )
    for share, code, grpc in outcomes:
        rps = reached * share
        if call.source_proxy:
            delayed = fault.delay_share
            if delayed:
                late = tuple((ms + fault.delay_ms, s) for ms, s in base)
                result.append(Flow(_labels(call, "source", code, grpc, "DI"), rps * delayed, late))
            if delayed < 1:
                result.append(Flow(_labels(call, "source", code, grpc, "-"), rps * (1 - delayed), base))
        if call.destination_proxy:
            result.append(Flow(_labels(call, "destination", code, grpc, "-"), rps, base))
    return [f for f in result if f.rps > 0]


def _label_text(labels: tuple[tuple[str, str], ...], extra: str = "") -> str:
    body = ",".join(f'{k}="{v}"' for k, v in labels)
    return "{" + body + (f",{extra}" if extra else "") + "}"


def _bucket_counts(flow: Flow, requests: float) -> list[tuple[str, float]]:
    counts = [(f"{b:g}", requests * sum(s for ms, s in flow.latency if ms <= b)) for b in BUCKETS_MS]
    return [*counts, ("+Inf", requests)]


def _number(value: float) -> str:
    return repr(round(value, 6))


class Counters:
    """Cumulative counts per series, advanced by the traffic's rates over time."""

    def __init__(self) -> None:
        self.requests: dict[tuple[tuple[str, str], ...], float] = {}
        self.buckets: dict[tuple[tuple[str, str], ...], list[tuple[str, float]]] = {}
        self.sums: dict[tuple[tuple[str, str], ...], float] = {}

    def advance(self, current: list[Flow], seconds: float) -> None:
        for flow in current:
            n = flow.rps * seconds
            self.requests[flow.labels] = self.requests.get(flow.labels, 0.0) + n
            previous = dict(self.buckets.get(flow.labels, []))
            self.buckets[flow.labels] = [(le, previous.get(le, 0.0) + c) for le, c in _bucket_counts(flow, n)]
            self.sums[flow.labels] = self.sums.get(flow.labels, 0.0) + n * sum(
                ms * s for ms, s in flow.latency
            )

    def families(self, timestamp: float | None = None) -> dict[str, list[str]]:
        """Sample lines per family, optionally stamped (OpenMetrics backfill)."""
        stamp = f" {timestamp:.3f}" if timestamp is not None else ""
        requests = [
            f"istio_requests_total{_label_text(k)} {_number(v)}{stamp}" for k, v in self.requests.items()
        ]
        durations: list[str] = []
        for key, buckets in self.buckets.items():
            for le, count in buckets:
                bucket = _label_text(key, 'le="' + le + '"')
                durations.append(
                    f"istio_request_duration_milliseconds_bucket{bucket} {_number(count)}{stamp}"
                )
            durations.append(
                f"istio_request_duration_milliseconds_sum{_label_text(key)} {_number(self.sums[key])}{stamp}"
            )
            total = _number(self.requests[key])
            durations.append(f"istio_request_duration_milliseconds_count{_label_text(key)} {total}{stamp}")
        return {"requests": requests, "durations": durations}


def all_flows(api: ClusterApi, namespace: str = NAMESPACE) -> list[Flow]:
    return [f for c in calls(api, namespace) for f in flows(c)]


class Simulator:
    """Live counters for /metrics: each scrape adds what flowed since the last one, as the cluster
    is then, so injecting a fault shows in the next scrape."""

    def __init__(self, api: ClusterApi, namespace: str = NAMESPACE, clock: object = time.monotonic) -> None:
        self._api = api
        self._namespace = namespace
        self._clock = clock
        self._counters = Counters()
        self._last: float | None = None
        self._lock = threading.Lock()

    def exposition(self) -> str:
        """The Prometheus text format (version 0.0.4)."""
        with self._lock:
            now = self._clock()  # type: ignore[operator]
            if self._last is not None:
                self._counters.advance(all_flows(self._api, self._namespace), now - self._last)
            self._last = now
            families = self._counters.families()
        return (
            "# TYPE istio_requests_total counter\n"
            + "".join(line + "\n" for line in families["requests"])
            + "# TYPE istio_request_duration_milliseconds histogram\n"
            + "".join(line + "\n" for line in families["durations"])
        )


def openmetrics_history(
    api: ClusterApi, *, start: float, end: float, step: float = 15.0, namespace: str = NAMESPACE
) -> Iterator[str]:
    """Lines of an OpenMetrics file for `promtool tsdb create-blocks-from openmetrics`: the traffic
    of the cluster as it is now, from `start` to `end` (Unix seconds), a sample every `step`.

    promtool wants each series' samples in time order and families grouped, so every series is
    written whole before the next.
    """
    current = all_flows(api, namespace)
    frames: list[dict[str, list[str]]] = []
    counters = Counters()
    t = start
    while t <= end:
        frames.append(counters.families(t))
        counters.advance(current, step)
        t += step
    for family, header in (
        ("requests", "# TYPE istio_requests counter"),
        ("durations", "# TYPE istio_request_duration_milliseconds histogram"),
    ):
        yield header
        # Series appear once they have a first sample; the first frame is empty.
        width = max((len(f[family]) for f in frames), default=0)
        for i in range(width):
            for frame in frames:
                if i < len(frame[family]):
                    yield frame[family][i]
    yield "# EOF"
