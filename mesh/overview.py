"""`/mesh status`: the control plane, sidecar coverage of injected namespaces and the hosts exposed
through gateways, in one read-only pass over the cluster."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mesh.errors import NotFound, calling
from mesh.expose import is_managed, list_istio_objects
from mesh.injection import (
    INJECTION_LABEL,
    PROXY_CONTAINER,
    SIDECAR_STATUS,
    injected_namespaces,
    list_current_pods,
    pod_sidecar,
    require_namespace,
)
from mesh.install import ControlPlane, control_plane_status
from mesh.kube import Kube

Manifest = dict[str, Any]


@dataclass(frozen=True)
class NamespaceCoverage:
    namespace: str
    injection_enabled: bool
    pods: int
    with_sidecar: int
    # Pods created before injection was enabled, or that opted out: they need a restart or a look.
    without_sidecar: tuple[str, ...]

    @property
    def coverage_text(self) -> str:
        return f"{self.with_sidecar}/{self.pods}"


@dataclass(frozen=True)
class ExposedHost:
    host: str
    namespace: str
    # None for a Gateway host that no VirtualService routes yet.
    virtual_service: str | None
    gateways: tuple[str, ...]
    destinations: tuple[str, ...]
    managed_by_meshbot: bool


@dataclass(frozen=True)
class Overview:
    namespace: str | None
    control_plane: ControlPlane
    injection: tuple[NamespaceCoverage, ...]
    exposed: tuple[ExposedHost, ...]


# ----------------------------------------------------------------- pure


def _bound_gateways(route: Manifest) -> list[str]:
    """The gateways a VirtualService is bound to, as namespace/name (`mesh` means sidecars only)."""
    namespace = route["metadata"].get("namespace", "")
    gateways = (route.get("spec") or {}).get("gateways") or []
    return [g if "/" in g else f"{namespace}/{g}" for g in gateways if g != "mesh"]


def _destinations(route: Manifest) -> tuple[str, ...]:
    spec = route.get("spec") or {}
    found: list[str] = []
    for kind in ("http", "tls", "tcp"):
        for rule in spec.get(kind) or []:
            for target in rule.get("route") or []:
                destination = target.get("destination") or {}
                port = (destination.get("port") or {}).get("number")
                text = f"{destination.get('host')}:{port}" if port else str(destination.get("host"))
                if text not in found:
                    found.append(text)
    return tuple(found)


def _host_only(host: str) -> str:
    # Gateway hosts may be written `namespace/host`.
    return host.rsplit("/", 1)[-1]


def exposed_hosts(
    gateways: list[Manifest], routes: list[Manifest], namespace: str | None = None
) -> tuple[ExposedHost, ...]:
    """host → service for every gateway-bound VirtualService, plus Gateway hosts nothing routes."""
    exposed: list[ExposedHost] = []
    routed: set[tuple[str, str]] = set()
    for route in routes:
        bound = _bound_gateways(route)
        meta = route["metadata"]
        if not bound:
            continue
        for host in (route.get("spec") or {}).get("hosts") or []:
            routed.update((g, host) for g in bound)
            if namespace is None or meta.get("namespace") == namespace:
                exposed.append(
                    ExposedHost(
                        host,
                        meta.get("namespace", ""),
                        meta.get("name"),
                        tuple(bound),
                        _destinations(route),
                        is_managed(route),
                    )
                )
    for gateway in gateways:
        meta = gateway["metadata"]
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        if namespace is not None and meta.get("namespace") != namespace:
            continue
        servers = (gateway.get("spec") or {}).get("servers") or []
        for host in dict.fromkeys(_host_only(h) for s in servers for h in s.get("hosts") or []):
            if (key, host) not in routed:
                exposed.append(
                    ExposedHost(host, meta.get("namespace", ""), None, (key,), (), is_managed(gateway))
                )
    return tuple(sorted(exposed, key=lambda e: (e.host, e.namespace, e.virtual_service or "")))


# ----------------------------------------------------------------- I/O


def _coverage_of(namespace: str, enabled: bool, pods: list[Any]) -> NamespaceCoverage:
    sidecars = [pod_sidecar(p) for p in pods]
    missing = tuple(sorted(p.name for p in sidecars if not p.has_sidecar))
    return NamespaceCoverage(namespace, enabled, len(sidecars), len(sidecars) - len(missing), missing)


def _coverage(kube: Kube, namespace: str, enabled: bool) -> NamespaceCoverage:
    return _coverage_of(namespace, enabled, list_current_pods(kube, namespace))


def _raw_pods(kube: Kube) -> list[Manifest]:
    """Every pod as the API server's JSON. Building typed V1Pod models for 2,000 pods took most of
    `status`'s time at scale, and coverage needs three fields of each."""
    with calling("listing pods"):
        response: Any = kube.core.list_pod_for_all_namespaces(
            _preload_content=False, _request_timeout=kube.timeout
        )
    items = json.loads(response.data).get("items")
    return items if isinstance(items, list) else []


def _raw_has_sidecar(pod: Manifest) -> bool:
    # mesh.injection.has_sidecar, on the JSON: a proxy container, a native sidecar, or the
    # injector's status annotation (tests/mesh/test_overview.py checks both agree).
    spec = pod.get("spec") or {}
    if any(c.get("name") == PROXY_CONTAINER for c in spec.get("containers") or []):
        return True
    if any(
        c.get("name") == PROXY_CONTAINER and c.get("restartPolicy") == "Always"
        for c in spec.get("initContainers") or []
    ):
        return True
    return SIDECAR_STATUS in ((pod.get("metadata") or {}).get("annotations") or {})


def _coverage_everywhere(kube: Kube) -> tuple[NamespaceCoverage, ...]:
    """One list of every pod, not one per namespace: the number of API calls must not grow with
    the cluster (a list per injected namespace was 50 calls on a 50-namespace cluster)."""
    injected = injected_namespaces(kube)
    by_namespace: dict[str, list[Manifest]] = {ns: [] for ns in injected}
    for pod in _raw_pods(kube):
        meta = pod.get("metadata") or {}
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed") or meta.get("deletionTimestamp") is not None:
            continue  # as mesh.injection.list_current_pods: only pods that count
        found = by_namespace.get(meta.get("namespace") or "")
        if found is not None:
            found.append(pod)
    coverage = []
    for ns in injected:
        pods = by_namespace[ns]
        missing = tuple(sorted(p["metadata"].get("name") or "" for p in pods if not _raw_has_sidecar(p)))
        coverage.append(NamespaceCoverage(ns, True, len(pods), len(pods) - len(missing), missing))
    return tuple(coverage)


def _exposed(kube: Kube, namespace: str | None) -> tuple[ExposedHost, ...]:
    try:
        gateways = list_istio_objects(kube, "Gateway")
        routes = list_istio_objects(kube, "VirtualService")
    except NotFound:
        # Without Istio's CRDs nothing can be exposed; the control plane part says why.
        return ()
    return exposed_hosts(gateways, routes, namespace)


def mesh_overview(kube: Kube, namespace: str | None = None) -> Overview:
    """The whole mesh, or one namespace of it (shown even when it is not labelled for injection)."""
    if namespace is None:
        coverage = _coverage_everywhere(kube)
    else:
        labels = require_namespace(kube, namespace)
        coverage = (_coverage(kube, namespace, labels.get(INJECTION_LABEL) == "enabled"),)
    return Overview(namespace, control_plane_status(kube), coverage, _exposed(kube, namespace))
