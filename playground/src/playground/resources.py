"""The resource types the playground serves: built-in kinds plus every kind a CRD object defines."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from playground.errors import ApiError

# Fields the real API server lets list/watch filter on, beyond metadata.name/namespace (each
# registry's ToSelectableFields upstream).
_POD_FIELDS = frozenset(
    {
        "status.phase",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.podIP",
        "status.nominatedNodeName",
    }
)
# Since 1.31: kube-proxy and kubelet skip headless Services with spec.clusterIP!=None.
_SERVICE_FIELDS = frozenset({"spec.clusterIP", "spec.type"})
_EVENT_FIELDS = frozenset(
    {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "type",
    }
)
_BASE_FIELDS = frozenset({"metadata.name", "metadata.namespace"})


@dataclass(frozen=True)
class ResourceType:
    group: str
    versions: tuple[str, ...]
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    extra_field_selectors: frozenset[str] = frozenset()
    builtin: bool = True
    # For custom resources: openAPIV3Schema and additionalPrinterColumns by version.
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False, hash=False)
    printer_columns: dict[str, list[dict[str, Any]]] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def storage_version(self) -> str:
        return self.versions[0]

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def field_selectors(self) -> frozenset[str]:
        return _BASE_FIELDS | self.extra_field_selectors

    def api_version(self, version: str | None = None) -> str:
        v = version or self.storage_version
        return f"{self.group}/{v}" if self.group else v

    @property
    def qualified(self) -> str:
        """`pods` or `virtualservices.networking.istio.io`, as error messages name a resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def verbs(self) -> list[str]:
        return ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def _core(plural: str, kind: str, namespaced: bool = True, **kw: Any) -> ResourceType:
    return ResourceType("", ("v1",), plural, kind, namespaced, singular=kind.lower(), **kw)


def _grouped(group: str, plural: str, kind: str, namespaced: bool = True, **kw: Any) -> ResourceType:
    return ResourceType(group, ("v1",), plural, kind, namespaced, singular=kind.lower(), **kw)


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _core(
        "namespaces",
        "Namespace",
        False,
        short_names=("ns",),
        subresources=frozenset({"status"}),
        extra_field_selectors=frozenset({"status.phase"}),
    ),
    _core(
        "pods",
        "Pod",
        short_names=("po",),
        categories=("all",),
        subresources=frozenset({"status", "log"}),
        extra_field_selectors=_POD_FIELDS,
    ),
    _core(
        "services",
        "Service",
        short_names=("svc",),
        categories=("all",),
        subresources=frozenset({"status"}),
        extra_field_selectors=_SERVICE_FIELDS,
    ),
    _core("endpoints", "Endpoints", short_names=("ep",)),
    _core("configmaps", "ConfigMap", short_names=("cm",)),
    _core("secrets", "Secret", extra_field_selectors=frozenset({"type"})),
    _core("serviceaccounts", "ServiceAccount", short_names=("sa",)),
    # Stored, not bound: deploy/overlays/dev keeps SQLite on one.
    _core("persistentvolumeclaims", "PersistentVolumeClaim", short_names=("pvc",)),
    _core("events", "Event", short_names=("ev",), extra_field_selectors=_EVENT_FIELDS),
    _grouped(
        "apps",
        "deployments",
        "Deployment",
        short_names=("deploy",),
        categories=("all",),
        subresources=frozenset({"status", "scale"}),
    ),
    _grouped(
        "apps",
        "replicasets",
        "ReplicaSet",
        short_names=("rs",),
        categories=("all",),
        subresources=frozenset({"status", "scale"}),
    ),
    _grouped("batch", "jobs", "Job", categories=("all",), subresources=frozenset({"status"})),
    # Stored and validated, not scheduled: the reaper's CronJob manifest must apply, nothing runs it.
    _grouped(
        "batch",
        "cronjobs",
        "CronJob",
        short_names=("cj",),
        categories=("all",),
        subresources=frozenset({"status"}),
    ),
    _grouped("coordination.k8s.io", "leases", "Lease"),
    # Stored, not enforced: deploy/'s PodDisruptionBudget, NetworkPolicy and Ingress must apply.
    _grouped("policy", "poddisruptionbudgets", "PodDisruptionBudget", short_names=("pdb",)),
    _grouped("networking.k8s.io", "networkpolicies", "NetworkPolicy", short_names=("netpol",)),
    _grouped("networking.k8s.io", "ingresses", "Ingress", short_names=("ing",)),
    _grouped("rbac.authorization.k8s.io", "roles", "Role"),
    _grouped("rbac.authorization.k8s.io", "rolebindings", "RoleBinding"),
    _grouped("rbac.authorization.k8s.io", "clusterroles", "ClusterRole", False),
    _grouped("rbac.authorization.k8s.io", "clusterrolebindings", "ClusterRoleBinding", False),
    _grouped(
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        short_names=("crd", "crds"),
        subresources=frozenset({"status"}),
    ),
)

CRD_TYPE = BUILTIN_TYPES[-1]


def type_from_crd(crd: dict[str, Any]) -> ResourceType:
    """The resource type a CRD object defines: its served versions, storage version first."""
    spec = crd["spec"]
    names = spec["names"]
    served = [v for v in spec.get("versions", []) if v.get("served", True)]
    served.sort(key=lambda v: not v.get("storage", False))
    versions = tuple(v["name"] for v in served)
    subresources: set[str] = set()
    schemas: dict[str, dict[str, Any]] = {}
    columns: dict[str, list[dict[str, Any]]] = {}
    for v in served:
        subresources.update((v.get("subresources") or {}).keys())
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        if schema:
            schemas[v["name"]] = schema
        columns[v["name"]] = list(v.get("additionalPrinterColumns") or [])
    return ResourceType(
        group=spec["group"],
        versions=versions,
        plural=names["plural"],
        kind=names["kind"],
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        singular=names.get("singular") or names["kind"].lower(),
        short_names=tuple(names.get("shortNames") or ()),
        categories=tuple(names.get("categories") or ()),
        subresources=frozenset(subresources),
        builtin=False,
        schemas=schemas,
        printer_columns=columns,
    )


class Registry:
    """Which (group, version, plural) the server answers for; CRDs add and remove entries."""

    def __init__(self, types: Iterable[ResourceType] = BUILTIN_TYPES) -> None:
        self._lock = threading.Lock()
        self._types: dict[tuple[str, str], ResourceType] = {t.key: t for t in types}

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types.values())

    def add(self, rtype: ResourceType) -> None:
        with self._lock:
            self._types[rtype.key] = rtype

    def remove(self, key: tuple[str, str]) -> None:
        with self._lock:
            current = self._types.get(key)
            if current is not None and not current.builtin:
                del self._types[key]

    def get(self, group: str, plural: str) -> ResourceType | None:
        with self._lock:
            return self._types.get((group, plural))

    def resolve(self, group: str, version: str, plural: str) -> ResourceType:
        rtype = self.get(group, plural)
        if rtype is None or version not in rtype.versions:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return rtype

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        with self._lock:
            for t in self._types.values():
                if t.group == group and t.kind == kind and version in t.versions:
                    return t
        return None

    def groups(self) -> dict[str, list[str]]:
        """Group name → served versions (preferred first), for discovery."""
        result: dict[str, list[str]] = {}
        with self._lock:
            for t in self._types.values():
                versions = result.setdefault(t.group, [])
                for v in t.versions:
                    if v not in versions:
                        versions.append(v)
        for versions in result.values():
            versions.sort(key=_version_priority)
        return result


def _version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes' version ordering: GA before beta before alpha, higher numbers first."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0)
    major = int(m.group(1))
    stage = {"None": 0, "beta": 1, "alpha": 2}[str(m.group(2))]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor)
