"""Mutual TLS: which PeerAuthentication mode is in force for a namespace and each of its workloads,
and setting the namespace-wide one.

Istio resolves the mode from the most specific policy down: a workload's selector policy, else
the namespace-wide policy, else the mesh-wide one in the root namespace, else PERMISSIVE. A
policy whose mode is UNSET (or missing) passes the decision to the level above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from mesh.errors import MeshError, NotFound, calling
from mesh.kube import Kube
from mesh.namespaces import require_namespace

GROUP = "security.istio.io"
VERSION = "v1"
PLURAL = "peerauthentications"
ROOT_NAMESPACE = "istio-system"
MODES = ("STRICT", "PERMISSIVE", "DISABLE")
DEFAULT_MODE = "PERMISSIVE"
NAMESPACE_POLICY = "default"
MANAGED_BY = "app.kubernetes.io/managed-by"
MESHBOT = "meshbot"
MERGE_PATCH = "application/merge-patch+json"
ISTIO_DEFAULT = "Istio's default (no PeerAuthentication applies)"

Policy = dict[str, Any]


class MtlsModeError(MeshError):
    """A mode or a policy layout meshbot will not write; nothing was changed."""


# ----------------------------------------------------------------- pure: resolution


@dataclass(frozen=True)
class Effective:
    mode: str
    # Where the mode comes from: "PeerAuthentication ns/name (scope)" or Istio's default.
    source: str


@dataclass(frozen=True)
class WorkloadMtls:
    name: str
    mode: str
    source: str
    # Port-level overrides of a workload policy: (port, mode).
    ports: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class MtlsReport:
    namespace: str
    mesh: Effective
    namespace_wide: Effective
    workloads: tuple[WorkloadMtls, ...]


def validate_mode(mode: str) -> str:
    normal = mode.strip().upper()
    if normal not in MODES:
        raise MtlsModeError(f"mTLS mode {mode!r} is not one of {', '.join(MODES)}")
    return normal


def _match_labels(policy: Policy) -> dict[str, str]:
    return dict(((policy.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})


def _mode(policy: Policy) -> str | None:
    """The policy's own mode, None when it defers to the level above (UNSET or absent)."""
    mode = ((policy.get("spec") or {}).get("mtls") or {}).get("mode")
    return None if mode in (None, "", "UNSET") else str(mode)


def _age(policy: Policy) -> tuple[str, str]:
    meta = policy.get("metadata") or {}
    return str(meta.get("creationTimestamp", "")), str(meta.get("name", ""))


def _oldest(policies: list[Policy]) -> Policy | None:
    # Istio takes the oldest when several policies compete at one level.
    return min(policies, key=_age, default=None)


def _describe(policy: Policy, scope: str) -> str:
    meta = policy.get("metadata") or {}
    return f"PeerAuthentication {meta.get('namespace')}/{meta.get('name')} ({scope})"


def _namespace_wide(policies: list[Policy], namespace: str) -> Policy | None:
    in_namespace = [p for p in policies if (p.get("metadata") or {}).get("namespace") == namespace]
    return _oldest([p for p in in_namespace if not _match_labels(p)])


def _level(policy: Policy | None, scope: str, parent: Effective) -> Effective:
    if policy is None:
        return parent
    mode = _mode(policy)
    return Effective(mode, _describe(policy, scope)) if mode else parent


def resolve_mtls(
    policies: list[Policy],
    namespace: str,
    workloads: dict[str, dict[str, str]],
    root_namespace: str = ROOT_NAMESPACE,
) -> MtlsReport:
    """The effective modes for `namespace` and its workloads (name → pod labels) under `policies`
    (PeerAuthentications of the root namespace and of `namespace`)."""
    mesh = _level(
        _namespace_wide(policies, root_namespace), "mesh-wide", Effective(DEFAULT_MODE, ISTIO_DEFAULT)
    )
    namespace_wide = (
        mesh
        if namespace == root_namespace
        else _level(_namespace_wide(policies, namespace), "namespace-wide", mesh)
    )
    selective = [
        p for p in policies if (p.get("metadata") or {}).get("namespace") == namespace and _match_labels(p)
    ]
    report = []
    for name, labels in sorted(workloads.items()):
        matching = [p for p in selective if all(labels.get(k) == v for k, v in _match_labels(p).items())]
        chosen = _oldest(matching)
        effective = _level(chosen, "workload", namespace_wide)
        ports: tuple[tuple[int, str], ...] = ()
        if chosen is not None:
            port_level = (chosen.get("spec") or {}).get("portLevelMtls") or {}
            ports = tuple(
                sorted(
                    (int(port), str((setting or {}).get("mode") or effective.mode))
                    for port, setting in port_level.items()
                )
            )
        report.append(WorkloadMtls(name, effective.mode, effective.source, ports))
    return MtlsReport(namespace, mesh, namespace_wide, tuple(report))


def namespace_policy_manifest(namespace: str, mode: str) -> Policy:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PeerAuthentication",
        "metadata": {
            "name": NAMESPACE_POLICY,
            "namespace": namespace,
            "labels": {MANAGED_BY: MESHBOT},
        },
        "spec": {"mtls": {"mode": validate_mode(mode)}},
    }


# ----------------------------------------------------------------- I/O


def _list_policies(kube: Kube, namespace: str) -> list[Policy]:
    try:
        with calling(f"listing PeerAuthentications in {namespace}"):
            listed = kube.custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, _request_timeout=kube.timeout
            )
    except NotFound:
        raise NotFound(f"{PLURAL}.{GROUP}/{VERSION} are not served: is Istio installed?") from None
    return cast(list[Policy], cast(Policy, listed).get("items") or [])


def _workload_labels(kube: Kube, namespace: str) -> dict[str, dict[str, str]]:
    with calling(f"listing the Deployments in {namespace}"):
        deployments = kube.apps.list_namespaced_deployment(namespace, _request_timeout=kube.timeout).items
    labels = {}
    for deployment in deployments:
        meta = deployment.metadata
        template = deployment.spec.template.metadata if deployment.spec else None
        if meta is not None and meta.name:
            labels[meta.name] = dict((template.labels if template else None) or {})
    return labels


def effective_mtls(kube: Kube, namespace: str, *, root_namespace: str = ROOT_NAMESPACE) -> MtlsReport:
    """The mTLS mode in force for the namespace and for each of its Deployments, with its source."""
    require_namespace(kube, namespace)
    policies = _list_policies(kube, root_namespace)
    if namespace != root_namespace:
        policies += _list_policies(kube, namespace)
    return resolve_mtls(policies, namespace, _workload_labels(kube, namespace), root_namespace)


@dataclass(frozen=True)
class MtlsChange:
    namespace: str
    mode: str
    # The mode the `default` policy had before; None when there was none.
    previous: str | None
    written: bool


def set_mtls(kube: Kube, namespace: str, mode: str) -> MtlsChange:
    """Creates or updates the namespace-wide PeerAuthentication `default` with `mode`
    (in the root namespace that makes it mesh-wide)."""
    mode = validate_mode(mode)
    require_namespace(kube, namespace)
    policies = _list_policies(kube, namespace)
    current = next((p for p in policies if p["metadata"]["name"] == NAMESPACE_POLICY), None)
    if current is not None and _match_labels(current):
        raise MtlsModeError(
            f"PeerAuthentication {namespace}/{NAMESPACE_POLICY} selects workloads, so it is not "
            "namespace-wide; meshbot will not change it"
        )
    rival = _namespace_wide([p for p in policies if p is not current], namespace)
    if rival is not None and (current is None or _age(rival) < _age(current)):
        # Istio would keep obeying the older policy and ours would change nothing.
        raise MtlsModeError(
            f"{_describe(rival, 'namespace-wide')} already sets the namespace's mode and takes "
            "precedence; change that policy instead"
        )
    if current is None:
        with calling(f"creating PeerAuthentication {namespace}/{NAMESPACE_POLICY}"):
            kube.custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                namespace_policy_manifest(namespace, mode),
                field_validation="Strict",
                _request_timeout=kube.timeout,
            )
        return MtlsChange(namespace, mode, None, written=True)
    previous = _mode(current)
    if previous == mode:
        return MtlsChange(namespace, mode, previous, written=False)
    patch = {
        # Optimistic concurrency: someone else's change since our read makes this a 409.
        "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
        "spec": {"mtls": {"mode": mode}},
    }
    with calling(f"updating PeerAuthentication {namespace}/{NAMESPACE_POLICY}"):
        kube.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            NAMESPACE_POLICY,
            patch,
            field_validation="Strict",
            _content_type=MERGE_PATCH,
            _request_timeout=kube.timeout,
        )
    return MtlsChange(namespace, mode, previous, written=True)
