"""Validation of built-in kinds: the checks the real API server makes that meshbot's tests can hit.

Not the full upstream validation — only what a client of these kinds is likely to get wrong: names,
required fields, enums and immutable fields, reported as 422 Invalid with the field path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from playground.errors import Cause
from playground.meta import Obj, dig

Validator = Callable[[Obj], list[Cause]]

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_NAME_RULES: dict[str, tuple[str, str, int, tuple[str, ...]]] = {
    # rule: (what upstream calls it, regex shown in the message, max length, examples)
    "label": (
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
        "must start and end with an alphanumeric character",
        _DNS1123_LABEL_FMT,
        63,
        ("my-name", "123-abc"),
    ),
    "subdomain": (
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
        "'.', and must start and end with an alphanumeric character",
        _DNS1123_SUBDOMAIN_FMT,
        253,
        ("example.com",),
    ),
    "dns1035": (
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
        "alphabetic character, and end with an alphanumeric character",
        _DNS1035_LABEL_FMT,
        63,
        ("my-name", "abc-123"),
    ),
}
# Each registry's name rule upstream: Namespaces are labels, Services DNS-1035 labels, RBAC
# objects any path segment ("system:aggregate-to-edit"), everything else a subdomain.
_NAME_RULE_OF_KIND = {
    "Namespace": "label",
    "Service": "dns1035",
    "Role": "path",
    "ClusterRole": "path",
    "RoleBinding": "path",
    "ClusterRoleBinding": "path",
}


def required(path: str, detail: str = "") -> Cause:
    return Cause("FieldValueRequired", f"Required value{': ' + detail if detail else ''}", path)


def invalid_value(path: str, value: Any, detail: str) -> Cause:
    shown = f'"{value}"' if isinstance(value, str) else str(value)
    return Cause("FieldValueInvalid", f"Invalid value: {shown}: {detail}", path)


def unsupported(path: str, value: Any, supported: list[str]) -> Cause:
    options = ", ".join(f'"{s}"' for s in supported)
    return Cause("FieldValueNotSupported", f'Unsupported value: "{value}": supported values: {options}', path)


def _regex_error(message: str, regex: str, examples: tuple[str, ...]) -> str:
    shown = "".join(f"{' or ' if i else ''}'{e}', " for i, e in enumerate(examples))
    return f"{message} (e.g. {shown}regex used for validation is '{regex}')"


def _name_errors(rule: str, name: str) -> list[str]:
    if rule == "path":
        if name in (".", ".."):
            return [f"may not be '{name}'"]
        return [f"may not contain '{c}'" for c in ("/", "%") if c in name]
    message, regex, max_length, examples = _NAME_RULES[rule]
    errors = []
    if len(name) > max_length:
        errors.append(f"must be no more than {max_length} characters")
    if not re.fullmatch(regex, name):
        errors.append(_regex_error(message, regex, examples))
    return errors


def name_causes(kind: str, name: str) -> list[Cause]:
    rule = _NAME_RULE_OF_KIND.get(kind, "subdomain")
    return [invalid_value("metadata.name", name, error) for error in _name_errors(rule, name)]


def _containers(spec: Obj, path: str) -> list[Cause]:
    containers = spec.get("containers")
    if not containers:
        return [required(f"{path}.containers")]
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, c in enumerate(containers):
        cpath = f"{path}.containers[{i}]"
        if not c.get("name"):
            causes.append(required(f"{cpath}.name"))
        elif c["name"] in seen:
            causes.append(Cause("FieldValueDuplicate", f'Duplicate value: "{c["name"]}"', f"{cpath}.name"))
        else:
            seen.add(c["name"])
        if not c.get("image"):
            causes.append(required(f"{cpath}.image"))
    return causes


def _pod(obj: Obj) -> list[Cause]:
    causes = _containers(obj.get("spec") or {}, "spec")
    policy = dig(obj, "spec", "restartPolicy")
    if policy is not None and policy not in ("Always", "OnFailure", "Never"):
        causes.append(unsupported("spec.restartPolicy", policy, ["Always", "OnFailure", "Never"]))
    return causes


def _selector_matches_template(obj: Obj) -> list[Cause]:
    selector = dig(obj, "spec", "selector")
    if not selector:
        return [required("spec.selector")]
    match_labels = selector.get("matchLabels") or {}
    template_labels = dig(obj, "spec", "template", "metadata", "labels") or {}
    if any(template_labels.get(k) != v for k, v in match_labels.items()):
        return [
            invalid_value(
                "spec.template.metadata.labels",
                template_labels,
                "`selector` does not match template `labels`",
            )
        ]
    return []


def _workload(obj: Obj) -> list[Cause]:
    causes = _selector_matches_template(obj)
    template_spec = dig(obj, "spec", "template", "spec")
    if template_spec is None:
        causes.append(required("spec.template.spec"))
    else:
        causes.extend(_containers(template_spec, "spec.template.spec"))
    replicas = dig(obj, "spec", "replicas")
    if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
        causes.append(invalid_value("spec.replicas", replicas, "must be greater than or equal to 0"))
    return causes


def _job(obj: Obj) -> list[Cause]:
    template_spec = dig(obj, "spec", "template", "spec")
    if template_spec is None:
        return [required("spec.template.spec")]
    causes = _containers(template_spec, "spec.template.spec")
    policy = template_spec.get("restartPolicy")
    if policy not in ("OnFailure", "Never"):
        causes.append(unsupported("spec.template.spec.restartPolicy", policy, ["OnFailure", "Never"]))
    return causes


def _cronjob(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    schedule = dig(obj, "spec", "schedule")
    if not schedule:
        causes.append(required("spec.schedule"))
    elif len(str(schedule).split()) != 5 and not str(schedule).startswith("@"):
        causes.append(invalid_value("spec.schedule", schedule, "unparseable schedule: expected 5 fields"))
    template = dig(obj, "spec", "jobTemplate")
    if template is None:
        causes.append(required("spec.jobTemplate"))
    else:
        # The job template is a Job without metadata: reuse the Job rules with shifted paths.
        for cause in _job({"spec": template.get("spec") or {}}):
            causes.append(Cause(cause.reason, cause.message, "spec.jobTemplate." + cause.field))
    return causes


_SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]


def _service(obj: Obj) -> list[Cause]:
    spec = obj.get("spec") or {}
    kind = spec.get("type", "ClusterIP")
    causes: list[Cause] = []
    if kind not in _SERVICE_TYPES:
        causes.append(unsupported("spec.type", kind, _SERVICE_TYPES))
    ports = spec.get("ports") or []
    if kind != "ExternalName" and not ports and spec.get("clusterIP") != "None":
        causes.append(required("spec.ports"))
    for i, port in enumerate(ports):
        number = port.get("port")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            causes.append(
                invalid_value(f"spec.ports[{i}].port", number, "must be between 1 and 65535, inclusive")
            )
        if len(ports) > 1 and not port.get("name"):
            causes.append(required(f"spec.ports[{i}].name"))
    return causes


def _role_binding(obj: Obj) -> list[Cause]:
    ref = obj.get("roleRef") or {}
    return [required(f"roleRef.{f}") for f in ("kind", "name") if not ref.get(f)]


def _role(obj: Obj) -> list[Cause]:
    return [
        required(f"rules[{i}].verbs")
        for i, rule in enumerate(obj.get("rules") or [])
        if not rule.get("verbs")
    ]


def _crd(obj: Obj) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    for field in ("group", "scope"):
        if not spec.get(field):
            causes.append(required(f"spec.{field}"))
    names = spec.get("names") or {}
    for field in ("plural", "kind"):
        if not names.get(field):
            causes.append(required(f"spec.names.{field}"))
    versions = spec.get("versions") or []
    if not versions:
        causes.append(required("spec.versions"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            invalid_value("spec.versions", "", "must have exactly one version marked as storage version")
        )
    expected = f"{names.get('plural')}.{spec.get('group')}"
    if obj["metadata"]["name"] != expected:
        causes.append(
            invalid_value(
                "metadata.name",
                obj["metadata"]["name"],
                'must be spec.names.plural+"."+spec.group',
            )
        )
    return causes


VALIDATORS: dict[str, Validator] = {
    "Pod": _pod,
    "Deployment": _workload,
    "ReplicaSet": _workload,
    "Job": _job,
    "CronJob": _cronjob,
    "Service": _service,
    "RoleBinding": _role_binding,
    "ClusterRoleBinding": _role_binding,
    "Role": _role,
    "ClusterRole": _role,
    "CustomResourceDefinition": _crd,
}

# Fields that cannot change after creation, by kind (dotted paths).
IMMUTABLE: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec.selector",),
    "ReplicaSet": ("spec.selector",),
    "Job": ("spec.selector", "spec.template"),
    "RoleBinding": ("roleRef",),
    "ClusterRoleBinding": ("roleRef",),
    "Service": ("spec.clusterIP",),
    "CustomResourceDefinition": ("spec.group", "spec.names.plural"),
}


def validate_builtin(obj: Obj) -> list[Cause]:
    validator = VALIDATORS.get(obj.get("kind", ""))
    return validator(obj) if validator else []


def immutable_causes(old: Obj, new: Obj) -> list[Cause]:
    causes = []
    for path in IMMUTABLE.get(new.get("kind", ""), ()):
        parts = path.split(".")
        before, after = dig(old, *parts), dig(new, *parts)
        if after != before and not (path == "spec.clusterIP" and not after):
            causes.append(invalid_value(path, after, "field is immutable"))
    return causes
