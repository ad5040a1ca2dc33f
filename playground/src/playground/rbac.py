"""Kubernetes' RBAC authorizer, for tests that prove a set of Roles is enough and no more.

Off unless a test turns it on (``Hooks.authorizer``); then every request of an authenticated
token is decided as upstream's RBAC authorizer decides it (plugin/pkg/auth/authorizer/rbac):
the request's attributes as the RequestInfoFactory reads them from the path, the rules of every
ClusterRoleBinding and of the RoleBindings in the request's namespace, ``*`` in verbs, apiGroups
and resources, ``*/subresource``, resourceNames, nonResourceURLs with a trailing ``*``, ClusterRole
aggregation, and the bootstrap policy every cluster starts with (discovery and
SelfSubjectAccessReview for everyone authenticated, ``system:masters`` may do anything). A denial
is the 403 upstream writes, word for word.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from playground.errors import ApiError
from playground.selectors import label_selector_from_match
from playground.state import ObjectStore

RBAC_GROUP = "rbac.authorization.k8s.io"
SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
# Upstream's RequestInfoFactory: /namespaces/{ns}/status and /finalize are the namespace's own.
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})

# The bootstrap ClusterRoles bound to system:authenticated on every cluster
# (plugin/pkg/auth/authorizer/rbac/bootstrappolicy): without them kubectl could not even discover.
_BOOTSTRAP_RULES: tuple[dict[str, Any], ...] = (
    {
        "verbs": ["get"],
        "nonResourceURLs": [
            "/api",
            "/api/*",
            "/apis",
            "/apis/*",
            "/healthz",
            "/livez",
            "/readyz",
            "/version",
            "/version/",
            "/openapi",
            "/openapi/*",
        ],
    },
    {
        "verbs": ["create"],
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
    },
)


def service_account_user(namespace: str, name: str) -> tuple[str, tuple[str, ...]]:
    """The user name and groups a ServiceAccount's token authenticates as."""
    return (
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}"),
    )


@dataclass(frozen=True)
class Attributes:
    """What a request asks to do, as upstream's authorizer.AttributesRecord."""

    verb: str
    resource_request: bool
    path: str = ""
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""

    @property
    def combined_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def attributes_of(method: str, path: str, watch: bool = False) -> Attributes:
    """The attributes of an HTTP request, as upstream's RequestInfoFactory.NewRequestInfo."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return Attributes(verb=method.lower(), resource_request=False, path=path)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if method == "GET":
        verb = "watch" if watch else ("get" if name else "list")
    elif method == "DELETE" and not name:
        verb = "deletecollection"
    else:
        verb = _METHOD_VERBS.get(method, method.lower())
    return Attributes(verb, True, path, group, resource, subresource, namespace, name)


def _matches(values: Iterable[str], wanted: str) -> bool:
    values = list(values)
    return "*" in values or wanted in values


def rule_allows(rule: Mapping[str, Any], attrs: Attributes) -> bool:
    """upstream's RuleAllows: verbs, then groups/resources/names, or non-resource URLs."""
    if not _matches(rule.get("verbs") or [], attrs.verb):
        return False
    if not attrs.resource_request:
        return any(
            url == "*" or url == attrs.path or (url.endswith("*") and attrs.path.startswith(url[:-1]))
            for url in rule.get("nonResourceURLs") or []
        )
    if not _matches(rule.get("apiGroups") or [], attrs.group):
        return False
    resources = rule.get("resources") or []
    if not any(
        r == "*" or r == attrs.combined_resource or (attrs.subresource and r == f"*/{attrs.subresource}")
        for r in resources
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


@dataclass
class Authorizer:
    """Decides from the Role, ClusterRole and binding objects in the store at the time of asking."""

    store: ObjectStore
    # Bindings the cluster is created with; tests may add theirs as objects instead.
    bootstrap_rules: tuple[dict[str, Any], ...] = field(default=_BOOTSTRAP_RULES)

    def decide(self, user: str, groups: Sequence[str], attrs: Attributes) -> Decision:
        groups = (*groups, AUTHENTICATED)
        if MASTERS in groups:
            return Decision(True, f'allowed by group "{MASTERS}"')
        if any(rule_allows(rule, attrs) for rule in self.bootstrap_rules):
            return Decision(True, "RBAC: allowed by the bootstrap policy")
        for binding in self._objects("clusterrolebindings"):
            subject = _bound(binding, user, groups, "")
            if subject and any(rule_allows(r, attrs) for r in self._role_rules(binding, "")):
                return Decision(True, _allowed_by("ClusterRoleBinding", binding, subject))
        if attrs.namespace:
            for binding in self._objects("rolebindings", attrs.namespace):
                subject = _bound(binding, user, groups, attrs.namespace)
                rules = self._role_rules(binding, attrs.namespace)
                if subject and any(rule_allows(r, attrs) for r in rules):
                    return Decision(True, _allowed_by("RoleBinding", binding, subject))
        return Decision(False)

    def check(self, user: str, groups: Sequence[str], method: str, path: str, watch: bool) -> ApiError | None:
        """None when the request may go on; else the 403 upstream answers with."""
        attrs = attributes_of(method, path, watch)
        if self.decide(user, groups, attrs).allowed:
            return None
        return forbidden(user, attrs)

    def review(self, user: str, groups: Sequence[str], body: Mapping[str, Any]) -> dict[str, Any]:
        """A SelfSubjectAccessReview answered: the request's spec, and its status."""
        spec = body.get("spec") or {}
        resource = spec.get("resourceAttributes")
        non_resource = spec.get("nonResourceAttributes")
        if resource is not None:
            attrs = Attributes(
                verb=resource.get("verb", ""),
                resource_request=True,
                group=resource.get("group", ""),
                resource=resource.get("resource", ""),
                subresource=resource.get("subresource", ""),
                namespace=resource.get("namespace", ""),
                name=resource.get("name", ""),
            )
        elif non_resource is not None:
            attrs = Attributes(
                verb=non_resource.get("verb", ""), resource_request=False, path=non_resource.get("path", "")
            )
        else:
            raise ApiError(
                422,
                "Invalid",
                'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: '
                "spec.resourceAttributes: Invalid value: null: exactly one of nonResourceAttributes "
                "or resourceAttributes must be specified",
                group="authorization.k8s.io",
                kind="SelfSubjectAccessReview",
            )
        decision = self.decide(user, groups, attrs)
        status: dict[str, Any] = {"allowed": decision.allowed}
        if decision.reason:
            status["reason"] = decision.reason
        return {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }

    def _objects(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.store.list((RBAC_GROUP, plural), namespace)[0]

    def _role_rules(self, binding: Mapping[str, Any], namespace: str) -> list[dict[str, Any]]:
        ref = binding.get("roleRef") or {}
        if ref.get("kind") == "Role" and namespace:
            role = self.store.get((RBAC_GROUP, "roles"), namespace, ref.get("name", ""))
        elif ref.get("kind") == "ClusterRole":
            role = self.store.get((RBAC_GROUP, "clusterroles"), "", ref.get("name", ""))
        else:
            role = None
        if role is None:
            return []
        return self._rules(role)

    def _rules(self, role: Mapping[str, Any]) -> list[dict[str, Any]]:
        aggregation = role.get("aggregationRule")
        if not aggregation:
            return list(role.get("rules") or [])
        # What the clusterrole-aggregation controller writes into .rules: every rule of every
        # ClusterRole one of the selectors matches (aggregated ones contribute their own rules only).
        selectors = [label_selector_from_match(s) for s in aggregation.get("clusterRoleSelectors") or []]
        rules: list[dict[str, Any]] = []
        for other in self._objects("clusterroles"):
            labels = other["metadata"].get("labels") or {}
            if other["metadata"]["name"] != role["metadata"]["name"] and any(
                s.matches(labels) for s in selectors
            ):
                rules.extend(other.get("rules") or [])
        return rules


def _bound(binding: Mapping[str, Any], user: str, groups: Sequence[str], namespace: str) -> str:
    """The subject of the binding the requester is, as upstream's appliesToUser ("" if none)."""
    for subject in binding.get("subjects") or []:
        kind, name = subject.get("kind"), subject.get("name", "")
        if kind == "User" and name == user:
            return f'User "{name}"'
        if kind == "Group" and name in groups:
            return f'Group "{name}"'
        if kind == "ServiceAccount":
            # A RoleBinding's subject without a namespace means the binding's own namespace.
            sa_namespace = subject.get("namespace") or namespace
            if sa_namespace and user == f"system:serviceaccount:{sa_namespace}:{name}":
                return f'ServiceAccount "{sa_namespace}/{name}"'
    return ""


def _allowed_by(kind: str, binding: Mapping[str, Any], subject: str) -> str:
    meta = binding.get("metadata") or {}
    ref = binding.get("roleRef") or {}
    name = meta.get("name")
    where = f'"{name}/{meta.get("namespace")}"' if kind == "RoleBinding" else f'"{name}"'
    return f'RBAC: allowed by {kind} {where} of {ref.get("kind")} "{ref.get("name")}" to {subject}'


def forbidden(user: str, attrs: Attributes) -> ApiError:
    """upstream's responsewriters.Forbidden: the Status a denied request gets."""
    if not attrs.resource_request:
        return ApiError(403, "Forbidden", f'forbidden: User "{user}" cannot {attrs.verb} path "{attrs.path}"')
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    reason = (
        f'User "{user}" cannot {attrs.verb} resource "{attrs.combined_resource}" '
        f'in API group "{attrs.group}" {where}'
    )
    qualified = f"{attrs.resource}.{attrs.group}" if attrs.group else attrs.resource
    subject = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    return ApiError(
        403,
        "Forbidden",
        f"{subject} is forbidden: {reason}",
        name=attrs.name or None,
        group=attrs.group or None,
        kind=attrs.resource,
    )
