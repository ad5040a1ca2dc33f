"""Pre-flight: what would make a fault not do what the person expects, said before it is applied.

Warnings never block: a fault with no traffic yet may be exactly what someone wants to prepare.
Each check that cannot run (no Prometheus, the API refusing to list pods) says so instead.
"""

from __future__ import annotations

from mesh.errors import MeshError
from mesh.kube import Kube
from mesh.prometheus import Prometheus, TelemetryUnavailable
from mesh.virtualservices import FaultPlan, sidecarless_callers

# A warning names this many workloads, then counts the rest: it is one line in a chat message.
MAX_NAMED = 8
# "Recent" traffic: long enough to span a few scrapes and a quiet minute.
RECENT = "5m"


def preflight(kube: Kube, prometheus: Prometheus | None, plan: FaultPlan) -> list[str]:
    namespace, service, target = plan.namespace, plan.service, f"{plan.service}.{plan.namespace}"
    warnings = list(plan.warnings)
    try:
        callers = sidecarless_callers(kube, namespace)
    except MeshError:
        callers = []
    if callers:
        named = ", ".join(callers[:MAX_NAMED])
        more = f" and {len(callers) - MAX_NAMED} more" if len(callers) > MAX_NAMED else ""
        warnings.append(
            f"pods without a sidecar won't see this fault when they call {service}: {named}{more}"
        )
    warnings += _traffic(prometheus, plan, target)
    if plan.spec.headers:
        wanted = ", ".join(f"{k}: {v}" for k, v in plan.spec.headers.items())
        # Istio's standard metrics carry no request headers, so this cannot be checked cheaply.
        warnings.append(
            f"it matches only requests with {wanted}; meshbot cannot see headers in Istio's metrics, "
            "so make sure some traffic sends them, or the fault matches nothing"
        )
    return warnings


def _traffic(prometheus: Prometheus | None, plan: FaultPlan, target: str) -> list[str]:
    if prometheus is None:
        return [f"no Prometheus is configured: recent traffic to {target} was not checked"]
    try:
        found = prometheus.services(plan.namespace, RECENT, plan.service)
    except TelemetryUnavailable as exc:
        return [f"recent traffic to {target} was not checked: {exc}"]
    if not found or found[0].signals.requests_per_second <= 0:
        return [
            f"no requests reached {target} in the last 5 minutes (Prometheus): the fault would have "
            "nothing to act on"
        ]
    patched_gateways = any(
        [g for g in ((c.spec_before or {}).get("gateways") or []) if g != "mesh"] for c in plan.changes
    )
    gateways = sorted(c.workload for c in found[0].callers if "gateway" in c.workload)
    if gateways and not patched_gateways:
        return [
            f"{', '.join(gateways)} reaches {target} through a gateway whose VirtualService is not "
            f"among those patched (none in {plan.namespace} binds a gateway): that traffic is not faulted"
        ]
    return []
