"""Sidecar injection: the namespace label, the rollout restart that makes it take effect, and a
report of which pods actually carry an `istio-proxy`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes.client import V1Container, V1ContainerStatus, V1ObjectMeta, V1Pod

from mesh.errors import NotFound, calling
from mesh.kube import Kube

INJECTION_LABEL = "istio-injection"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
SIDECAR_STATUS = "sidecar.istio.io/status"
PROXY_CONTAINER = "istio-proxy"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


def _meta(obj: Any) -> V1ObjectMeta:
    """The metadata of a typed object; the generated models make every field optional."""
    meta = getattr(obj, "metadata", None)
    return meta if isinstance(meta, V1ObjectMeta) else V1ObjectMeta()


def require_namespace(kube: Kube, namespace: str) -> dict[str, str]:
    """The namespace's labels; NotFound naming it when it does not exist."""
    try:
        with calling(f"reading namespace {namespace}"):
            found = kube.core.read_namespace(namespace, _request_timeout=kube.timeout)
    except NotFound:
        raise NotFound(f"namespace {namespace} does not exist") from None
    return dict(_meta(found).labels or {})


# ----------------------------------------------------------------- pure


def injection_label_patch(enabled: bool) -> dict[str, Any]:
    """A merge patch that sets or removes `istio-injection` and leaves every other label alone."""
    return {"metadata": {"labels": {INJECTION_LABEL: "enabled" if enabled else None}}}


def restart_patch(at: datetime) -> dict[str, Any]:
    """What `kubectl rollout restart` sends: a new template annotation, hence a new ReplicaSet."""
    # Finer than kubectl's whole seconds: two restarts within a second must still both roll.
    stamp = at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}


@dataclass(frozen=True)
class PodSidecar:
    name: str
    phase: str
    ready: int
    total: int
    has_sidecar: bool

    @property
    def ready_text(self) -> str:
        """kubectl's READY column, e.g. `2/2`."""
        return f"{self.ready}/{self.total}"


@dataclass(frozen=True)
class WorkloadSidecars:
    """A Deployment's pods and whether each carries the Istio proxy."""

    namespace: str
    name: str
    pods: tuple[PodSidecar, ...]

    @property
    def without_sidecar(self) -> tuple[PodSidecar, ...]:
        return tuple(p for p in self.pods if not p.has_sidecar)

    @property
    def all_injected(self) -> bool:
        return bool(self.pods) and not self.without_sidecar


def _is_native_sidecar(container: V1Container) -> bool:
    return container.restart_policy == "Always"


def has_sidecar(pod: V1Pod) -> bool:
    """Whether Istio injected its proxy: as a container, as a native sidecar (an init container
    that keeps running), or as recorded by the injector's status annotation."""
    spec = pod.spec
    containers = spec.containers if spec else []
    init_containers = (spec.init_containers if spec else None) or []
    if any(c.name == PROXY_CONTAINER for c in containers):
        return True
    if any(c.name == PROXY_CONTAINER and _is_native_sidecar(c) for c in init_containers):
        return True
    return SIDECAR_STATUS in (_meta(pod).annotations or {})


def pod_sidecar(pod: V1Pod) -> PodSidecar:
    """One pod's READY count (regular and native-sidecar containers, as kubectl counts) and
    whether it has a sidecar."""
    spec, status = pod.spec, pod.status
    native = {c.name for c in ((spec.init_containers if spec else None) or []) if _is_native_sidecar(c)}
    counted: list[V1ContainerStatus] = list((status.container_statuses if status else None) or [])
    counted += [s for s in ((status.init_container_statuses if status else None) or []) if s.name in native]
    total = len(spec.containers if spec else []) + len(native)
    ready = sum(1 for s in counted if s.ready)
    phase = (status.phase if status else None) or "Unknown"
    return PodSidecar(_meta(pod).name or "", phase, ready, total, has_sidecar(pod))


def _is_current(pod: V1Pod) -> bool:
    """Pods that count: not finished and not on their way out after a restart."""
    phase = pod.status.phase if pod.status else None
    return phase not in ("Succeeded", "Failed") and _meta(pod).deletion_timestamp is None


# ----------------------------------------------------------------- I/O


@dataclass(frozen=True)
class InjectionChange:
    namespace: str
    enabled: bool
    changed: bool


def set_injection(kube: Kube, namespace: str, enabled: bool) -> InjectionChange:
    """Labels (or unlabels) the namespace `istio-injection=enabled`. Only new pods are affected:
    restart the workloads for running ones to get (or lose) their sidecar."""
    labels = require_namespace(kube, namespace)
    was_enabled = labels.get(INJECTION_LABEL) == "enabled"
    if was_enabled == enabled and (enabled or INJECTION_LABEL not in labels):
        return InjectionChange(namespace, enabled, changed=False)
    with calling(f"labelling namespace {namespace}"):
        kube.core.patch_namespace(
            namespace,
            injection_label_patch(enabled),
            _content_type=MERGE_PATCH,
            _request_timeout=kube.timeout,
        )
    return InjectionChange(namespace, enabled, changed=True)


@dataclass(frozen=True)
class Restart:
    namespace: str
    restarted: tuple[str, ...]
    # Paused Deployments cannot roll out; kubectl refuses them too.
    skipped_paused: tuple[str, ...]


def restart_workloads(kube: Kube, namespace: str, *, at: datetime | None = None) -> Restart:
    """`kubectl rollout restart deployment -n <namespace>` for every Deployment in it."""
    require_namespace(kube, namespace)
    with calling(f"listing the Deployments in {namespace}"):
        deployments = kube.apps.list_namespaced_deployment(namespace, _request_timeout=kube.timeout).items
    patch = restart_patch(at or datetime.now(UTC))
    restarted: list[str] = []
    paused: list[str] = []
    for deployment in sorted(deployments, key=lambda d: _meta(d).name or ""):
        name = _meta(deployment).name or ""
        if deployment.spec is not None and deployment.spec.paused:
            paused.append(name)
            continue
        with calling(f"restarting Deployment {namespace}/{name}"):
            kube.apps.patch_namespaced_deployment(
                name,
                namespace,
                patch,
                _content_type=STRATEGIC_MERGE_PATCH,
                _request_timeout=kube.timeout,
            )
        restarted.append(name)
    return Restart(namespace, tuple(restarted), tuple(paused))


def injected_namespaces(kube: Kube) -> list[str]:
    """The namespaces labelled `istio-injection=enabled`."""
    with calling("listing the namespaces labelled for injection"):
        listed = kube.core.list_namespace(
            label_selector=f"{INJECTION_LABEL}=enabled", _request_timeout=kube.timeout
        ).items
    return sorted(_meta(ns).name or "" for ns in listed)


def list_current_pods(kube: Kube, namespace: str | None = None) -> list[V1Pod]:
    """Running and pending pods in a namespace (or all), without terminating or finished ones."""
    doing = f"listing the pods in {namespace}" if namespace else "listing pods"
    with calling(doing):
        if namespace:
            pods = kube.core.list_namespaced_pod(namespace, _request_timeout=kube.timeout).items
        else:
            pods = kube.core.list_pod_for_all_namespaces(_request_timeout=kube.timeout).items
    return [p for p in pods if _is_current(p)]


def _controller_uid(obj: Any) -> str | None:
    refs = _meta(obj).owner_references or []
    return next((r.uid for r in refs if r.controller), None)


def sidecar_report(kube: Kube, namespace: str) -> list[WorkloadSidecars]:
    """Per Deployment, its pods' READY and whether each has a sidecar, following the owner chain
    pod → ReplicaSet → Deployment (labels alone can match pods of other workloads)."""
    require_namespace(kube, namespace)
    with calling(f"listing the Deployments in {namespace}"):
        deployments = kube.apps.list_namespaced_deployment(namespace, _request_timeout=kube.timeout).items
    with calling(f"listing the ReplicaSets in {namespace}"):
        replica_sets = kube.apps.list_namespaced_replica_set(namespace, _request_timeout=kube.timeout).items
    pods = list_current_pods(kube, namespace)
    deployment_of_rs = {_meta(rs).uid: _controller_uid(rs) for rs in replica_sets}
    by_deployment: dict[str, list[PodSidecar]] = {}
    for pod in pods:
        owner = deployment_of_rs.get(_controller_uid(pod))
        if owner:
            by_deployment.setdefault(owner, []).append(pod_sidecar(pod))
    report = []
    for deployment in sorted(deployments, key=lambda d: _meta(d).name or ""):
        meta = _meta(deployment)
        found = sorted(by_deployment.get(meta.uid or "", []), key=lambda p: p.name)
        report.append(WorkloadSidecars(namespace, meta.name or "", tuple(found)))
    return report
