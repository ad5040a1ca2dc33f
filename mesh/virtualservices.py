"""Putting faults into the cluster's VirtualServices and taking them out again (the I/O half of
`mesh.faults`).

Every write is guarded: patches test what they were planned against (resourceVersion, or the
names of the routes they remove), so a concurrent edit makes them fail instead of clobbering it;
then meshbot re-reads, re-plans and retries. A command that fails half-way undoes what it already
did, so the cluster is left as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import kubernetes.client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from mesh.errors import Conflict, MeshError, NotFound, calling, from_api, from_transport
from mesh.faults import (
    ANNOTATION,
    FaultSpec,
    Json,
    Ops,
    Removal,
    ServiceTarget,
    VsChange,
    expiry_ops,
    marks_of,
    name_of,
    plan_changes,
    plan_removal,
    raw_marks,
)
from mesh.kube import Kube
from mesh.namespaces import require_service

log = logging.getLogger(__name__)

GROUP = "networking.istio.io"
VERSION = "v1"
PLURAL = "virtualservices"
JSON_PATCH = "application/json-patch+json"
SIDECAR_CONTAINER = "istio-proxy"
# Each retry re-reads and re-plans; five concurrent edits in a row means someone is fighting us.
MAX_ATTEMPTS = 5
_PAGE_SIZE = 500

T = TypeVar("T")


@dataclass(frozen=True)
class FaultPlan:
    """What `apply_fault` will write, planned from the objects as read, with the reply's warnings."""

    namespace: str
    service: str
    spec: FaultSpec
    experiment_id: str
    expires_at: datetime
    changes: list[VsChange]
    warnings: list[str]


@dataclass(frozen=True)
class AppliedChange:
    vs_name: str
    created: bool
    route_names: list[str]
    resource_version: str


@dataclass(frozen=True)
class AppliedFault:
    namespace: str
    service: str
    experiment_id: str
    expires_at: datetime
    changes: list[AppliedChange]
    warnings: list[str]
    attempts: int

    @property
    def vs_names(self) -> list[str]:
        return [c.vs_name for c in self.changes]


@dataclass(frozen=True)
class ClearedVs:
    vs_name: str
    removed_routes: list[str]
    missing_routes: list[str]  # gone before meshbot came to remove them
    deleted: bool  # the meshbot-owned VirtualService went with its last experiment


@dataclass(frozen=True)
class ClearReport:
    namespace: str
    experiment_id: str
    cleared: list[ClearedVs] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)  # VirtualServices deleted by someone else

    @property
    def found_nothing(self) -> bool:
        return not self.cleared and not self.vanished


@dataclass(frozen=True)
class MarkedFault:
    namespace: str
    vs_name: str
    experiment_id: str
    expires: datetime
    routes: tuple[str, ...]
    # Whether any of its routes is still in the VirtualService: someone may have removed them
    # by hand and left meshbot's annotation behind.
    live: bool = True

    def expired(self, now: datetime) -> bool:
        return self.expires <= now


class _Stale(Exception):
    """The object changed after we read it: re-read, re-plan, retry."""


# ------------------------------------------------------------------------------ API calls


def _paged(fetch: Callable[..., Any]) -> list[Json]:
    items: list[Json] = []
    token: str | None = None
    while True:
        page = fetch(limit=_PAGE_SIZE, _continue=token) if token else fetch(limit=_PAGE_SIZE)
        items += page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items


# Said wherever an Istio kind is missing, with the way out.
ISTIO_MISSING = (
    f"{PLURAL}.{GROUP}/{VERSION} are not served: Istio's CRDs are missing from this cluster. "
    "Install Istio first: `install` (istioctl install --set profile=demo)"
)


def _list_vs(kube: Kube, namespace: str | None) -> list[Json]:
    where = f"namespace {namespace}" if namespace else "all namespaces"
    try:
        with calling(f"listing the VirtualServices in {where}"):
            if namespace is None:
                return _paged(
                    lambda **page: kube.custom.list_cluster_custom_object(
                        GROUP, VERSION, PLURAL, _request_timeout=kube.timeout, **page
                    )
                )
            return _paged(
                lambda **page: kube.custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, _request_timeout=kube.timeout, **page
                )
            )
    except NotFound:
        # A list is only 404 when the kind is not served at all: Istio is not installed.
        raise NotFound(ISTIO_MISSING) from None


def _get_vs(kube: Kube, namespace: str, name: str) -> Json | None:
    """The VirtualService, or None when it does not exist (any more)."""
    try:
        with calling(f"reading VirtualService {namespace}/{name}"):
            obj = kube.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, _request_timeout=kube.timeout
            )
    except NotFound:
        return None
    return obj if isinstance(obj, dict) else None


def _write_failure(exc: ApiException, doing: str, still_as_planned: Callable[[], bool]) -> Exception:
    """A failed write as `_Stale` when it failed because the object changed since it was read:
    409, 404 (deleted), or 422 from a JSON Patch `test` — told apart from a real validation error
    by whether the object is still as planned."""
    if exc.status in (404, 409):
        return _Stale(doing)
    if exc.status == 422 and not still_as_planned():
        return _Stale(doing)
    return from_api(exc, doing)


# ------------------------------------------------------------------------------ planning


def plan_fault(
    kube: Kube,
    *,
    namespace: str,
    service: str,
    spec: FaultSpec,
    experiment_id: str,
    expires_at: datetime,
    service_checked: bool = False,
) -> FaultPlan:
    """Reads the Service (unless the caller just did) and the namespace's VirtualServices and
    plans the fault; writes nothing."""
    if not service_checked:
        require_service(kube, namespace, service)
    virtual_services = _list_vs(kube, namespace)
    planned = plan_changes(
        virtual_services,
        target=ServiceTarget(service, namespace),
        spec=spec,
        experiment_id=experiment_id,
        expires_at=expires_at,
    )
    return FaultPlan(namespace, service, spec, experiment_id, expires_at, planned.changes, planned.warnings)


def _replan(kube: Kube, plan: FaultPlan) -> FaultPlan:
    return plan_fault(
        kube,
        namespace=plan.namespace,
        service=plan.service,
        spec=plan.spec,
        experiment_id=plan.experiment_id,
        expires_at=plan.expires_at,
    )


# ------------------------------------------------------------------------------ applying


def apply_fault(kube: Kube, plan: FaultPlan) -> AppliedFault:
    """Writes the plan. When an object changed since it was read, re-reads and re-plans, up to
    MAX_ATTEMPTS times, then raises Conflict; any failure leaves the cluster as it was."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            changes = _apply_all(kube, plan)
        except _Stale:
            if attempt == MAX_ATTEMPTS:
                break
            log.info("VirtualServices changed under experiment %s; re-planning", plan.experiment_id)
            plan = _replan(kube, plan)
            continue
        return AppliedFault(
            plan.namespace,
            plan.service,
            plan.experiment_id,
            plan.expires_at,
            changes,
            plan.warnings,
            attempt,
        )
    raise Conflict(
        f"the VirtualServices for {plan.service} in namespace {plan.namespace} kept changing while "
        f"meshbot added the fault ({MAX_ATTEMPTS} attempts); nothing was changed, try again"
    )


def _apply_all(kube: Kube, plan: FaultPlan) -> list[AppliedChange]:
    done: list[AppliedChange] = []
    for change in plan.changes:
        try:
            done.append(_apply_one(kube, plan.namespace, change))
        except (_Stale, MeshError) as exc:
            touched = [*(d.vs_name for d in done), change.vs_name]
            failures = _undo(kube, plan.namespace, plan.experiment_id, touched)
            if isinstance(exc, _Stale) and not failures:
                raise
            raise _half_way_error(exc, plan, change, done, failures) from exc
    return done


def _apply_one(kube: Kube, namespace: str, change: VsChange) -> AppliedChange:
    names = [str(r["name"]) for r in change.inserted_routes]
    if change.created:
        body = change.body
        assert body is not None
        doing = f"creating VirtualService {namespace}/{change.vs_name}"
        created = _call(
            doing,
            lambda: kube.custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                body,
                field_validation="Strict",
                _request_timeout=kube.timeout,
            ),
            still_as_planned=lambda: True,
        )
        return AppliedChange(change.vs_name, True, names, _resource_version(created))
    doing = f"adding the fault to VirtualService {namespace}/{change.vs_name}"
    patched = _call(
        doing,
        lambda: kube.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            change.vs_name,
            change.patch,
            field_validation="Strict",
            _content_type=JSON_PATCH,
            _request_timeout=kube.timeout,
        ),
        still_as_planned=lambda: (
            _resource_version(_get_vs(kube, namespace, change.vs_name)) == change.resource_version
        ),
    )
    return AppliedChange(change.vs_name, False, names, _resource_version(patched))


def _call(doing: str, write: Callable[[], T], *, still_as_planned: Callable[[], bool]) -> T:
    try:
        return write()
    except ApiException as exc:
        raise _write_failure(exc, doing, still_as_planned) from exc
    except (Urllib3Error, OSError) as exc:
        raise from_transport(exc, doing) from exc


def _resource_version(obj: Any) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion", ""))


def _undo(kube: Kube, namespace: str, experiment_id: str, vs_names: Sequence[str]) -> dict[str, MeshError]:
    """Takes the experiment out of these VirtualServices again — including the one whose write
    failed, which may have happened anyway (a timeout). Returns what could not be undone."""
    failures: dict[str, MeshError] = {}
    for name in reversed(vs_names):
        try:
            _clear_one(kube, namespace, name, experiment_id)
        except MeshError as exc:
            failures[name] = exc
    return failures


def _half_way_error(
    exc: Exception,
    plan: FaultPlan,
    change: VsChange,
    done: Sequence[AppliedChange],
    failures: dict[str, MeshError],
) -> MeshError:
    if isinstance(exc, _Stale):
        cause: MeshError = Conflict(f"VirtualService {change.vs_name} changed while meshbot was writing it")
    else:
        assert isinstance(exc, MeshError)
        cause = exc
    if failures:
        listed = "; ".join(f"{name}: {error}" for name, error in failures.items())
        outcome = (
            f"undoing the change failed for VirtualService {listed}. The fault stays there until it "
            f"expires ({plan.expires_at:%Y-%m-%d %H:%M:%S %Z}), when the reaper removes it"
        )
    elif done:
        outcome = (
            f"the changes already made to VirtualService {', '.join(d.vs_name for d in done)} were "
            "undone: nothing was changed"
        )
    else:
        outcome = "nothing was changed"
    if isinstance(exc.__cause__, Urllib3Error | OSError):
        # The request may still reach the server after we gave up on it; the annotation it carries
        # lets the reaper take it out at expiry.
        outcome += (
            f". If the unanswered write to {change.vs_name} still lands, the reaper removes it when it "
            f"expires ({plan.expires_at:%Y-%m-%d %H:%M:%S %Z})"
        )
    return type(cause)(f"the fault was not injected: {cause}; {outcome}")


# ------------------------------------------------------------------------------ clearing


def clear_fault(
    kube: Kube, *, namespace: str, experiment_id: str, vs_names: Sequence[str] = ()
) -> ClearReport:
    """Removes exactly the experiment's routes and annotation entry from every VirtualService in the
    namespace that carries it. `vs_names` (where the fault was applied, if known) lets the report
    name VirtualServices that were deleted in the meantime instead of silently finding nothing."""
    virtual_services = _list_vs(kube, namespace)
    present = {name_of(vs) for vs in virtual_services}
    vanished = sorted(set(vs_names) - present)
    cleared: list[ClearedVs] = []
    failures: dict[str, MeshError] = {}
    for name in sorted(name_of(vs) for vs in virtual_services if _carries(vs, experiment_id)):
        # One VirtualService failing must not leave the fault in the others.
        try:
            result = _clear_one(kube, namespace, name, experiment_id)
        except MeshError as exc:
            failures[name] = exc
            continue
        if result is None:
            vanished.append(name)
        else:
            cleared.append(result)
    if failures:
        raise _clear_error(experiment_id, cleared, failures)
    return ClearReport(namespace, experiment_id, cleared, sorted(vanished))


def _clear_error(
    experiment_id: str, cleared: Sequence[ClearedVs], failures: dict[str, MeshError]
) -> MeshError:
    first = next(iter(failures.values()))
    listed = "; ".join(f"{name}: {error}" for name, error in failures.items())
    done = f"; it was removed from {', '.join(c.vs_name for c in cleared)}" if cleared else ""
    return type(first)(f"experiment {experiment_id} is still in VirtualService {listed}{done}")


def _carries(vs: Json, experiment_id: str) -> bool:
    try:
        return experiment_id in raw_marks(vs)
    except MeshError:
        log.warning("VirtualService %s has an unreadable %s annotation", name_of(vs), ANNOTATION)
        return False


def _clear_one(kube: Kube, namespace: str, name: str, experiment_id: str) -> ClearedVs | None:
    """Takes the experiment out of one VirtualService, re-reading on every conflict. None when the
    VirtualService no longer exists; an empty result when it no longer carries the experiment."""
    for _ in range(MAX_ATTEMPTS):
        vs = _get_vs(kube, namespace, name)
        if vs is None:
            return None
        removal = plan_removal(vs, experiment_id)
        if removal is None:
            return ClearedVs(name, [], [], deleted=False)
        try:
            _write_removal(kube, namespace, vs, removal)
        except _Stale:
            continue
        return ClearedVs(name, removal.removed_routes, removal.missing_routes, removal.delete_vs)
    raise Conflict(
        f"VirtualService {namespace}/{name} kept changing while meshbot removed experiment "
        f"{experiment_id} ({MAX_ATTEMPTS} attempts); its fault is still there"
    )


def _write_removal(kube: Kube, namespace: str, vs: Json, removal: Removal) -> None:
    name = removal.vs_name
    version = _resource_version(vs)

    def unchanged() -> bool:
        return _resource_version(_get_vs(kube, namespace, name)) == version

    if removal.delete_vs:
        options = kubernetes.client.V1DeleteOptions(
            preconditions=kubernetes.client.V1Preconditions(resource_version=version)
        )
        _call(
            f"deleting VirtualService {namespace}/{name}",
            lambda: kube.custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, body=options, _request_timeout=kube.timeout
            ),
            still_as_planned=unchanged,
        )
        return
    _call(
        f"removing experiment {removal.experiment_id} from VirtualService {namespace}/{name}",
        lambda: kube.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            removal.patch,
            field_validation="Strict",
            _content_type=JSON_PATCH,
            _request_timeout=kube.timeout,
        ),
        still_as_planned=unchanged,
    )


# ------------------------------------------------------------------------------ reading


def list_marked_faults(kube: Kube, namespace: str | None = None) -> list[MarkedFault]:
    """Every fault meshbot's annotation records, across all namespaces unless one is given, soonest
    expiry first: what the reaper needs to undo expired faults from the cluster alone."""
    found = [
        MarkedFault(
            str(vs.get("metadata", {}).get("namespace", "")),
            name_of(vs),
            experiment_id,
            mark.expires,
            mark.routes,
            live=bool(set(mark.routes) & _route_names(vs)),
        )
        for vs in _list_vs(kube, namespace)
        for experiment_id, mark in marks_of(vs).items()
    ]
    return sorted(found, key=lambda f: (f.expires, f.namespace, f.vs_name, f.experiment_id))


def _route_names(vs: Json) -> set[str]:
    return {str(route.get("name")) for route in (vs.get("spec") or {}).get("http") or [] if route.get("name")}


def sidecarless_callers(kube: Kube, namespace: str) -> list[str]:
    """The workloads with running pods that have no Istio sidecar: faults are injected by the
    caller's proxy, so calls from these never see the fault. Named as Istio's metrics name a
    workload (a Deployment's name, not its pods' hashes), so the warning says "vote-bot" once
    rather than a line of pod names per replica."""
    with calling(f"listing the pods in namespace {namespace}"):
        pods = kube.core.list_namespaced_pod(
            namespace, field_selector="status.phase=Running", _request_timeout=kube.timeout
        )
    return sorted(
        {
            workload_of(pod)
            for pod in pods.items
            if pod.metadata and pod.metadata.name and not _has_sidecar(pod)
        }
    )


def workload_of(pod: kubernetes.client.V1Pod) -> str:
    """A pod's workload: its owner, less the ReplicaSet's pod-template hash for a Deployment's
    pods; the pod's own name when nothing owns it."""
    meta = pod.metadata
    owners = (meta.owner_references or []) if meta else []
    if not owners or meta is None:
        return str(meta.name if meta else "")
    owner = owners[0].name
    suffix = f"-{(meta.labels or {}).get('pod-template-hash', '')}"
    if owners[0].kind == "ReplicaSet" and suffix != "-" and owner.endswith(suffix):
        return owner.removesuffix(suffix)
    return str(owner)


def _has_sidecar(pod: kubernetes.client.V1Pod) -> bool:
    spec = pod.spec
    if spec is None:
        return False
    if any(c.name == SIDECAR_CONTAINER for c in spec.containers or []):
        return True
    # Native sidecars (Istio ≥ 1.27 default): an init container that keeps running.
    return any(
        c.name == SIDECAR_CONTAINER and c.restart_policy == "Always" for c in spec.init_containers or []
    )


# ------------------------------------------------------------------------------ extending


def update_expiry(kube: Kube, *, namespace: str, experiment_id: str, expires_at: datetime) -> list[str]:
    """Moves an experiment's expiry in every VirtualService annotation that carries it, so the
    reaper, which trusts only the cluster, honours an extension. Returns the VirtualServices
    changed; each write tests the annotation as read and is retried on a concurrent edit."""
    changed: list[str] = []
    for vs in _list_vs(kube, namespace):
        if not _carries(vs, experiment_id):
            continue
        name = name_of(vs)
        for _ in range(MAX_ATTEMPTS):
            current = _get_vs(kube, namespace, name)
            if current is None or not _carries(current, experiment_id):
                break
            ops = expiry_ops(current, experiment_id, expires_at)
            version = _resource_version(current)
            try:
                _write_expiry(kube, namespace, name, ops, version)
            except _Stale:
                continue
            changed.append(name)
            break
        else:
            raise Conflict(
                f"VirtualService {namespace}/{name} kept changing while meshbot moved the expiry of "
                f"{experiment_id} ({MAX_ATTEMPTS} attempts)"
            )
    return changed


def _write_expiry(kube: Kube, namespace: str, name: str, ops: Ops, version: str) -> None:
    _call(
        f"moving an expiry in VirtualService {namespace}/{name}",
        lambda: kube.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            body=ops,
            _content_type=JSON_PATCH,
            _request_timeout=kube.timeout,
        ),
        still_as_planned=lambda: _resource_version(_get_vs(kube, namespace, name)) == version,
    )
