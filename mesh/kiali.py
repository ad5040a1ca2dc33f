"""Reading Kiali's REST API: its workload graph as the same edges mesh.prometheus builds, and
workload health.

Kiali's edges carry rates as strings and each response code's share of the edge (``responses[code]
.flags[flags]`` in percent); they are read with Prometheus's rules, not Kiali's: a failure is a 5xx
(or code 0), or a gRPC status other than 0 — Kiali's own ``httpPercentErr`` also counts 4xx — so
a graph reads the same whichever source drew it. TCP edges carry no requests and are left out, as
istio_requests_total leaves them out. One request, one time-out, no retries: a slow Kiali costs a
command one time-out, then the caller falls back to Prometheus.
"""

from __future__ import annotations

import re
from typing import Any

import requests

from mesh.prometheus import FAULT_FLAGS, Edge, TelemetryUnavailable, check_window

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def seconds(window: str) -> int:
    window = check_window(window)
    return int(window[:-1]) * _UNITS[window[-1]]


class Kiali:
    def __init__(self, url: str, *, token: str | None = None, timeout: float = 5.0, verify_tls: bool = True):
        # The URL includes Kiali's web root (Istio's addon serves it under /kiali).
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._session.verify = verify_tls
        # Loopback and in-cluster addresses; a proxy from the environment would only get in the way.
        self._session.trust_env = False
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, params: dict[str, str]) -> Any:
        try:
            response = self._session.get(f"{self.url}{path}", params=params, timeout=self.timeout)
        except requests.Timeout:
            raise TelemetryUnavailable(
                f"Kiali at {self.url} did not answer within {self.timeout:g}s"
            ) from None
        except requests.RequestException:
            raise TelemetryUnavailable(f"Kiali at {self.url} cannot be reached") from None
        if response.status_code == 401:
            raise TelemetryUnavailable(
                f"Kiali at {self.url} refused meshbot's credentials (401): check MESHBOT_KIALI_TOKEN"
            )
        if response.status_code != 200:
            raise TelemetryUnavailable(
                f"Kiali at {self.url} answered {response.status_code}: {_error_of(response)}"
            )
        try:
            return response.json()
        except ValueError:
            raise TelemetryUnavailable(f"Kiali at {self.url} gave an answer that is not JSON") from None

    def edges(self, namespace: str, window: str) -> list[Edge]:
        """Workload → workload edges into the namespace, worst first (as mesh.prometheus's)."""
        if not _NAME.fullmatch(namespace):
            raise ValueError(f"{namespace!r} is not a Kubernetes name")
        graph = self.get(
            "/api/namespaces/graph",
            {"namespaces": namespace, "graphType": "workload", "duration": f"{seconds(window)}s"},
        )
        try:
            return edges_from_graph(graph, namespace)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise TelemetryUnavailable(f"Kiali at {self.url} answered a graph meshbot cannot read") from None

    def health(self, namespace: str, window: str = "5m") -> dict[str, float | None]:
        """Each workload's share of failed inbound requests (None: no requests), as Kiali's health
        API counts them over ``window``."""
        answer = self.get(
            "/api/clusters/health",
            {"namespaces": namespace, "type": "workload", "rateInterval": check_window(window)},
        )
        try:
            workloads = answer.get(namespace, {})
            return {name: _failed_share(entry["requests"]["inbound"]) for name, entry in workloads.items()}
        except (KeyError, TypeError, AttributeError):
            raise TelemetryUnavailable(f"Kiali at {self.url} answered health meshbot cannot read") from None


def _error_of(response: requests.Response) -> str:
    """Kiali's one-line reason: its JSON ``{"error": …}``, else the start of the body."""
    try:
        body = response.json()
        text = str(body.get("error") or body) if isinstance(body, dict) else str(body)
    except ValueError:
        text = response.text
    return " ".join(text.split())[:200] or response.reason


def _failed(code: str, protocol: str) -> bool:
    if protocol == "grpc":
        return code != "0"
    return code.startswith("5") or code == "0"


def _failed_share(inbound: dict[str, dict[str, float]]) -> float | None:
    total = failed = 0.0
    for protocol, codes in inbound.items():
        for code, rate in codes.items():
            total += float(rate)
            failed += float(rate) if _failed(code, protocol) else 0.0
    return failed / total if total > 0 else None


def _name(node: dict[str, Any]) -> str:
    return str(node.get("workload") or node.get("service") or node.get("app") or "unknown")


def edges_from_graph(graph: dict[str, Any], namespace: str) -> list[Edge]:
    nodes = {n["data"]["id"]: n["data"] for n in graph.get("elements", {}).get("nodes") or []}
    edges = []
    for element in graph.get("elements", {}).get("edges") or []:
        data = element["data"]
        source, target = nodes[data["source"]], nodes[data["target"]]
        traffic = data.get("traffic") or {}
        protocol = traffic.get("protocol", "http")
        if protocol not in ("http", "grpc") or target.get("namespace") != namespace:
            continue
        rate = float(traffic.get("rates", {}).get(protocol, 0) or 0)
        if rate <= 0:
            continue
        failed = faulted = 0.0
        hosts: dict[str, float] = {}
        for code, response in (traffic.get("responses") or {}).items():
            for flags, percent in (response.get("flags") or {}).items():
                share = float(percent) / 100
                failed += share if _failed(code, protocol) else 0.0
                faulted += share if any(f in flags.split(",") for f in FAULT_FLAGS) else 0.0
            for host, percent in (response.get("hosts") or {}).items():
                hosts[host] = hosts.get(host, 0.0) + float(percent)
        services = [s.get("name") for s in target.get("destServices") or [] if s.get("name")]
        busiest = max(hosts, key=lambda h: hosts[h]).split(":")[0].split(".")[0] if hosts else None
        edges.append(
            Edge(
                source=_name(source),
                source_namespace=str(source.get("namespace") or ""),
                destination=_name(target),
                service=busiest or (services[0] if services else _name(target)),
                protocol=protocol,
                requests_per_second=rate,
                error_rate=min(failed, 1.0),
                fault_share=min(faulted, 1.0),
            )
        )
    return sorted(edges, key=lambda e: (-e.error_rate, e.source, e.destination))
