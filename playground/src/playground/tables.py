"""Server-side printing: `meta.k8s.io/v1` Tables, which kubectl asks for and prints as they come.

Columns follow upstream's printers for the kinds kubectl users look at most; custom resources use
their CRD's additionalPrinterColumns; everything else gets Name and Age.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from playground.meta import Obj, dig, human_duration, parse_rfc3339
from playground.resources import ResourceType

Column = tuple[str, str, int]  # name, type, priority (1 = shown with -o wide)
Row = list[Any]


def _age(obj: Obj) -> str:
    created = dig(obj, "metadata", "creationTimestamp")
    return human_duration(time.time() - parse_rfc3339(created)) if created else "<unknown>"


def _pod(obj: Obj) -> Row:
    statuses = dig(obj, "status", "containerStatuses", default=[]) or []
    containers = dig(obj, "spec", "containers", default=[]) or []
    ready = sum(1 for s in statuses if s.get("ready"))
    reason = dig(obj, "status", "reason") or dig(obj, "status", "phase", default="Pending")
    for s in statuses:
        waiting = dig(s, "state", "waiting", "reason")
        if waiting:
            reason = waiting
    if dig(obj, "metadata", "deletionTimestamp"):
        reason = "Terminating"
    if reason == "Succeeded":
        reason = "Completed"
    elif reason == "Failed":
        reason = "Error"
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    return [
        obj["metadata"]["name"],
        f"{ready}/{len(containers)}",
        reason,
        restarts,
        _age(obj),
        dig(obj, "status", "podIP", default="<none>"),
        dig(obj, "spec", "nodeName", default="<none>"),
        "<none>",
        "<none>",
    ]


def _ports(obj: Obj) -> str:
    parts = []
    for p in dig(obj, "spec", "ports", default=[]) or []:
        node = f":{p['nodePort']}" if p.get("nodePort") else ""
        parts.append(f"{p.get('port')}{node}/{p.get('protocol', 'TCP')}")
    return ",".join(parts) or "<none>"


def _external_ip(obj: Obj) -> str:
    ingress = dig(obj, "status", "loadBalancer", "ingress", default=[]) or []
    ips = [i.get("ip") or i.get("hostname") for i in ingress]
    if ips:
        return ",".join(str(i) for i in ips)
    if dig(obj, "spec", "type") == "LoadBalancer":
        return "<pending>"
    if dig(obj, "spec", "type") == "ExternalName":
        return str(dig(obj, "spec", "externalName"))
    return "<none>"


def _service(obj: Obj) -> Row:
    selector = dig(obj, "spec", "selector", default={}) or {}
    return [
        obj["metadata"]["name"],
        dig(obj, "spec", "type", default="ClusterIP"),
        dig(obj, "spec", "clusterIP", default="<none>"),
        _external_ip(obj),
        _ports(obj),
        _age(obj),
        ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>",
    ]


def _images(obj: Obj, *path: str) -> tuple[str, str]:
    containers = dig(obj, *path, default=[]) or []
    return ",".join(c["name"] for c in containers), ",".join(c["image"] for c in containers)


def _selector_text(obj: Obj) -> str:
    labels = dig(obj, "spec", "selector", "matchLabels", default={}) or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


def _deployment(obj: Obj) -> Row:
    names, images = _images(obj, "spec", "template", "spec", "containers")
    status = obj.get("status") or {}
    return [
        obj["metadata"]["name"],
        f"{status.get('readyReplicas', 0)}/{dig(obj, 'spec', 'replicas', default=1)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        _age(obj),
        names,
        images,
        _selector_text(obj),
    ]


def _replicaset(obj: Obj) -> Row:
    names, images = _images(obj, "spec", "template", "spec", "containers")
    status = obj.get("status") or {}
    return [
        obj["metadata"]["name"],
        dig(obj, "spec", "replicas", default=1),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        _age(obj),
        names,
        images,
        _selector_text(obj),
    ]


def _job(obj: Obj) -> Row:
    status = obj.get("status") or {}
    conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
    state = (
        "Complete"
        if conditions.get("Complete") == "True"
        else "Failed"
        if conditions.get("Failed") == "True"
        else "Running"
    )
    started, finished = status.get("startTime"), status.get("completionTime")
    duration = (
        human_duration((parse_rfc3339(finished) if finished else time.time()) - parse_rfc3339(started))
        if started
        else ""
    )
    return [
        obj["metadata"]["name"],
        state,
        f"{status.get('succeeded', 0)}/{dig(obj, 'spec', 'completions', default=1)}",
        duration,
        _age(obj),
    ]


def _cronjob(obj: Obj) -> Row:
    last = dig(obj, "status", "lastScheduleTime")
    return [
        obj["metadata"]["name"],
        dig(obj, "spec", "schedule", default=""),
        dig(obj, "spec", "timeZone", default="<none>"),
        "True" if dig(obj, "spec", "suspend") else "False",  # upstream prints the pointer as text
        len(dig(obj, "status", "active", default=[]) or []),
        human_duration(time.time() - parse_rfc3339(last)) if last else "<none>",
        _age(obj),
    ]


def _namespace(obj: Obj) -> Row:
    return [obj["metadata"]["name"], dig(obj, "status", "phase", default="Active"), _age(obj)]


def _endpoints(obj: Obj) -> Row:
    pairs = [
        f"{a['ip']}:{p['port']}"
        for subset in obj.get("subsets") or []
        for a in subset.get("addresses", [])
        for p in subset.get("ports", [])
    ]
    shown = ",".join(pairs[:3]) + (f" + {len(pairs) - 3} more..." if len(pairs) > 3 else "")
    return [obj["metadata"]["name"], shown or "<none>", _age(obj)]


def _created_at(obj: Obj) -> str:
    return str(dig(obj, "metadata", "creationTimestamp", default=""))


def _config_map(obj: Obj) -> Row:
    count = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [obj["metadata"]["name"], count, _age(obj)]


def _secret(obj: Obj) -> Row:
    return [obj["metadata"]["name"], obj.get("type", ""), len(obj.get("data") or {}), _age(obj)]


def _service_account(obj: Obj) -> Row:
    return [obj["metadata"]["name"], len(obj.get("secrets") or []), _age(obj)]


def _lease(obj: Obj) -> Row:
    return [obj["metadata"]["name"], dig(obj, "spec", "holderIdentity", default=""), _age(obj)]


def _role(obj: Obj) -> Row:
    return [obj["metadata"]["name"], _created_at(obj)]


def _role_binding(obj: Obj) -> Row:
    subjects = obj.get("subjects") or []

    def of_kind(kind: str) -> str:
        return ", ".join(
            f"{s.get('namespace', '')}:{s['name']}" if kind == "ServiceAccount" else s["name"]
            for s in subjects
            if s.get("kind") == kind
        )

    ref = obj.get("roleRef") or {}
    return [
        obj["metadata"]["name"],
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        _age(obj),
        of_kind("User"),
        of_kind("Group"),
        of_kind("ServiceAccount"),
    ]


def _since(stamp: str | None) -> str:
    return human_duration(time.time() - parse_rfc3339(stamp)) if stamp else "<unknown>"


def _event(obj: Obj) -> Row:
    involved = obj.get("involvedObject") or {}
    source = obj.get("source") or {}
    # Events recorded through events.k8s.io carry only a MicroTime eventTime.
    event_time = obj.get("eventTime")
    last = obj.get("lastTimestamp") or (f"{event_time[:19]}Z" if event_time else None)
    first = obj.get("firstTimestamp") or last
    return [
        _since(last),
        obj.get("type", ""),
        obj.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        involved.get("fieldPath", ""),
        ", ".join(v for v in (source.get("component"), source.get("host")) if v),
        obj.get("message", ""),
        _since(first),
        obj.get("count", 1),
        obj["metadata"]["name"],
    ]


_ROLE_COLUMNS: list[Column] = [("Name", "string", 0), ("Created At", "date", 0)]
_BINDING_COLUMNS: list[Column] = [
    ("Name", "string", 0),
    ("Role", "string", 0),
    ("Age", "string", 0),
    ("Users", "string", 1),
    ("Groups", "string", 1),
    ("ServiceAccounts", "string", 1),
]

PRINTERS: dict[tuple[str, str], tuple[list[Column], Callable[[Obj], Row]]] = {
    ("", "configmaps"): ([("Name", "string", 0), ("Data", "integer", 0), ("Age", "string", 0)], _config_map),
    ("", "secrets"): (
        [("Name", "string", 0), ("Type", "string", 0), ("Data", "integer", 0), ("Age", "string", 0)],
        _secret,
    ),
    ("", "serviceaccounts"): (
        [("Name", "string", 0), ("Secrets", "integer", 0), ("Age", "string", 0)],
        _service_account,
    ),
    ("", "events"): (
        [
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Subobject", "string", 1),
            ("Source", "string", 1),
            ("Message", "string", 0),
            ("First Seen", "string", 1),
            ("Count", "integer", 1),
            ("Name", "string", 1),
        ],
        _event,
    ),
    ("coordination.k8s.io", "leases"): (
        [("Name", "string", 0), ("Holder", "string", 0), ("Age", "string", 0)],
        _lease,
    ),
    ("rbac.authorization.k8s.io", "roles"): (_ROLE_COLUMNS, _role),
    ("rbac.authorization.k8s.io", "clusterroles"): (_ROLE_COLUMNS, _role),
    ("rbac.authorization.k8s.io", "rolebindings"): (_BINDING_COLUMNS, _role_binding),
    ("rbac.authorization.k8s.io", "clusterrolebindings"): (_BINDING_COLUMNS, _role_binding),
    ("", "pods"): (
        [
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "string", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
            ("Nominated Node", "string", 1),
            ("Readiness Gates", "string", 1),
        ],
        _pod,
    ),
    ("", "services"): (
        [
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
            ("Age", "string", 0),
            ("Selector", "string", 1),
        ],
        _service,
    ),
    ("apps", "deployments"): (
        [
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        _deployment,
    ),
    ("apps", "replicasets"): (
        [
            ("Name", "string", 0),
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        _replicaset,
    ),
    ("batch", "cronjobs"): (
        [
            ("Name", "string", 0),
            ("Schedule", "string", 0),
            ("Timezone", "string", 0),
            ("Suspend", "boolean", 0),
            ("Active", "integer", 0),
            ("Last Schedule", "string", 0),
            ("Age", "string", 0),
        ],
        _cronjob,
    ),
    ("batch", "jobs"): (
        [
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Completions", "string", 0),
            ("Duration", "string", 0),
            ("Age", "string", 0),
        ],
        _job,
    ),
    ("", "namespaces"): (
        [("Name", "string", 0), ("Status", "string", 0), ("Age", "string", 0)],
        _namespace,
    ),
    ("", "endpoints"): (
        [("Name", "string", 0), ("Endpoints", "string", 0), ("Age", "string", 0)],
        _endpoints,
    ),
}


def _json_path(obj: Obj, path: str) -> Any:
    """The subset of JSONPath that CRD printer columns use: `.spec.hosts`, `.a.b[0].c`."""
    cur: Any = obj
    for part in path.strip().lstrip(".").split("."):
        if not part:
            continue
        name, _, index = part.partition("[")
        cur = cur.get(name) if isinstance(cur, dict) else None
        if index:
            i = int(index.rstrip("]"))
            cur = cur[i] if isinstance(cur, list) and i < len(cur) else None
        if cur is None:
            return None
    return cur


def _custom_columns(rtype: ResourceType, version: str) -> tuple[list[Column], Callable[[Obj], Row]]:
    specs = rtype.printer_columns.get(version) or []
    columns: list[Column] = [("Name", "string", 0)]
    columns += [(c["name"], c.get("type", "string"), int(c.get("priority", 0))) for c in specs]
    if not any(c["name"] == "Age" for c in specs):
        columns.append(("Age", "string", 0))

    def row(obj: Obj) -> Row:
        cells: Row = [obj["metadata"]["name"]]
        for c in specs:
            value = _json_path(obj, c["jsonPath"])
            if c["jsonPath"].strip() == ".metadata.creationTimestamp":
                value = _age(obj)
            elif isinstance(value, list | dict):
                import json

                value = json.dumps(value, separators=(",", ":"))
            cells.append(value)
        if not any(c["name"] == "Age" for c in specs):
            cells.append(_age(obj))
        return cells

    return columns, row


def to_table(rtype: ResourceType, version: str, items: list[Obj], list_meta: Obj, include_object: str) -> Obj:
    if rtype.key in PRINTERS:
        columns, row = PRINTERS[rtype.key]
    elif not rtype.builtin:
        columns, row = _custom_columns(rtype, version)
    else:
        # Upstream's default table convertor, which CustomResourceDefinitions get too.
        columns, row = _ROLE_COLUMNS, _role
    definitions = [
        {
            "name": name,
            "type": kind,
            "format": "name" if name == "Name" else "",
            "description": name,
            "priority": priority,
        }
        for name, kind, priority in columns
    ]
    rows = []
    for item in items:
        entry: Obj = {"cells": row(item)}
        if include_object == "Object":
            entry["object"] = item
        elif include_object != "None":
            entry["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": item["metadata"],
            }
        rows.append(entry)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {
            k: v for k, v in list_meta.items() if k in ("resourceVersion", "continue", "remainingItemCount")
        },
        "columnDefinitions": definitions,
        "rows": rows,
    }
