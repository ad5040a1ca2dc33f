"""Istio fault injection as data: validated fault specs, the `fault` blocks Istio reads, and the
JSON Patches that add a fault to a VirtualService and take exactly that fault out again.

No I/O here: `mesh.virtualservices` reads the cluster, hands the objects to these functions and
sends what they return.

Bookkeeping lives on the VirtualService itself, in one annotation (`meshbot.dev/faults`):
`{experiment_id: {"expires": RFC3339, "routes": [route names]}}`. Whoever holds only the cluster
(the reaper) can therefore find and undo an expired fault without meshbot's database.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from core.durations import human_duration
from mesh.errors import MeshError

ANNOTATION = "meshbot.dev/faults"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "meshbot"
ROUTE_PREFIX = "meshbot-"
# Names the fallback route of a meshbot-owned VirtualService; it outlives single experiments.
DEFAULT_ROUTE_NAME = "meshbot-default"
CLUSTER_DOMAIN = "cluster.local"

FaultKind = Literal["delay", "abort"]
Json = dict[str, Any]
Ops = list[Json]

# The canonical gRPC status code names, in code order (0–16); Istio's grpcStatus takes these names.
GRPC_STATUS_CODES = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)
# istiod rejects fixedDelay below 1 ms or with sub-millisecond precision.
MIN_DELAY = timedelta(milliseconds=1)
# RFC 9110 token; fullmatch, as `$` would let a trailing newline through into the route match.
_HTTP_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")
# Far above real header names and values, low enough that a VirtualService stays small.
MAX_HEADER_NAME = 128
MAX_HEADER_VALUE = 1024
_EXPERIMENT_ID = re.compile(r"[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?")


class InvalidFault(MeshError, ValueError):
    """A fault that Istio would reject or that would not do what was asked; the message says why."""


class FaultPlanError(MeshError):
    """The fault cannot be placed safely in the namespace's VirtualServices as they are."""


# ---------------------------------------------------------------------------------- the spec


def validate_percentage(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InvalidFault(f"percentage must be a number, got {value!r}")
    if not 0 < value <= 100:
        raise InvalidFault(f"percentage must be more than 0 and at most 100, got {value:g}")
    return float(value)


def validate_http_status(code: int) -> int:
    if isinstance(code, bool) or not isinstance(code, int):
        raise InvalidFault(f"HTTP status must be a whole number between 200 and 599, got {code!r}")
    if not 200 <= code <= 599:
        raise InvalidFault(f"HTTP status must be between 200 and 599, got {code}")
    return code


def validate_grpc_status(name: str) -> str:
    """A canonical gRPC code name in any case (`unavailable`), returned as Istio wants it."""
    upper = name.strip().upper() if isinstance(name, str) else ""
    if upper not in GRPC_STATUS_CODES:
        raise InvalidFault(
            f"gRPC status {name!r} is not a gRPC status code name; use one of {', '.join(GRPC_STATUS_CODES)}"
        )
    return upper


def validate_delay(delay: timedelta, maximum: timedelta | None = None) -> timedelta:
    if not isinstance(delay, timedelta):
        raise InvalidFault(f"delay must be a duration, got {delay!r}")
    if delay < MIN_DELAY:
        raise InvalidFault(f"delay must be at least 1ms, got {human_duration(delay)}")
    if delay % MIN_DELAY:
        raise InvalidFault(
            f"delay {human_duration(delay)} is finer than Istio allows; use whole milliseconds"
        )
    if maximum is not None and delay > maximum:
        raise InvalidFault(
            f"delay {human_duration(delay)} is longer than the allowed maximum of {human_duration(maximum)}"
        )
    return delay


def validate_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Exact-match headers, names lower-cased: Istio requires lower-case header match keys."""
    checked: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower() if isinstance(name, str) else ""
        if not _HTTP_TOKEN.fullmatch(lowered) or len(lowered) > MAX_HEADER_NAME:
            raise InvalidFault(
                f"header name {_shown(name)} is not a valid HTTP header name "
                f"(at most {MAX_HEADER_NAME} letters, digits and !#$%&'*+.^_`|~-)"
            )
        if not isinstance(value, str) or not value:
            raise InvalidFault(f"header {lowered} needs a non-empty value to match exactly")
        # A control character (a newline above all) could never arrive in a request header.
        if not value.isprintable() or value != value.strip() or len(value) > MAX_HEADER_VALUE:
            raise InvalidFault(
                f"header {_shown(lowered)} value {_shown(value)} must be printable characters "
                f"without control characters or surrounding spaces, at most {MAX_HEADER_VALUE}"
            )
        if lowered in checked:
            raise InvalidFault(f"header {lowered} is given twice")
        checked[lowered] = value
    return checked


def _shown(text: str, limit: int = 40) -> str:
    # A refusal is one line of chat and of the audit log: quote long input only in part.
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}… ({len(text)} characters)"


def validate_experiment_id(experiment_id: str) -> str:
    # It becomes part of route names and a JSON key: keep it a short DNS label.
    if not isinstance(experiment_id, str) or not _EXPERIMENT_ID.fullmatch(experiment_id):
        raise InvalidFault(
            f"experiment id {experiment_id!r} must be 1–40 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return experiment_id


@dataclass(frozen=True)
class FaultSpec:
    """One fault: a delay or an abort on `percentage`% of the requests that carry `headers`.

    Construction validates everything except the operator's delay ceiling, which `delay_fault`
    checks; gRPC status names and header names are normalised to how Istio wants them.
    """

    kind: FaultKind
    percentage: float
    delay: timedelta | None = None
    http_status: int | None = None
    grpc_status: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "percentage", validate_percentage(self.percentage))
        object.__setattr__(self, "headers", validate_headers(self.headers))
        if self.kind == "delay":
            self._check_delay()
        elif self.kind == "abort":
            self._check_abort()
        else:
            raise InvalidFault(f"fault kind must be 'delay' or 'abort', got {self.kind!r}")

    def _check_delay(self) -> None:
        if self.delay is None:
            raise InvalidFault("a delay fault needs a delay, e.g. 3s")
        if self.http_status is not None or self.grpc_status is not None:
            raise InvalidFault("a delay fault takes no status; use an abort fault to return an error")
        validate_delay(self.delay)

    def _check_abort(self) -> None:
        if self.delay is not None:
            raise InvalidFault("an abort fault takes no delay; use a delay fault to slow requests down")
        if (self.http_status is None) == (self.grpc_status is None):
            raise InvalidFault("an abort fault needs exactly one of an HTTP status or a gRPC status")
        if self.http_status is not None:
            validate_http_status(self.http_status)
        if self.grpc_status is not None:
            object.__setattr__(self, "grpc_status", validate_grpc_status(self.grpc_status))


def delay_fault(
    delay: timedelta,
    percentage: float,
    *,
    max_delay: timedelta,
    headers: Mapping[str, str] | None = None,
) -> FaultSpec:
    validate_delay(delay, max_delay)
    return FaultSpec("delay", percentage, delay=delay, headers=dict(headers or {}))


def abort_fault(
    percentage: float,
    *,
    http_status: int | None = None,
    grpc_status: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> FaultSpec:
    return FaultSpec(
        "abort", percentage, http_status=http_status, grpc_status=grpc_status, headers=dict(headers or {})
    )


def protobuf_duration(value: timedelta) -> str:
    """A protobuf-JSON Duration (`3s`, `0.5s`, `0.001s`), the form Istio's fixedDelay accepts."""
    micros = value // timedelta(microseconds=1)
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), 1_000_000)
    if not fraction:
        return f"{sign}{seconds}s"
    return f"{sign}{seconds}.{fraction:06d}".rstrip("0") + "s"


def fault_block(spec: FaultSpec) -> Json:
    """The `fault` of an Istio HTTP route. The percentage is always written: a missing one means
    0% in current Istio (istio#36303), i.e. a fault that silently never fires."""
    percentage = {"value": spec.percentage}
    if spec.kind == "delay":
        assert spec.delay is not None
        return {"delay": {"fixedDelay": protobuf_duration(spec.delay), "percentage": percentage}}
    if spec.http_status is not None:
        return {"abort": {"httpStatus": spec.http_status, "percentage": percentage}}
    return {"abort": {"grpcStatus": spec.grpc_status, "percentage": percentage}}


# ---------------------------------------------------------------------------- which routes


@dataclass(frozen=True)
class ServiceTarget:
    """A Kubernetes Service as VirtualServices may name it."""

    name: str
    namespace: str
    cluster_domain: str = CLUSTER_DOMAIN

    @property
    def qualified_names(self) -> frozenset[str]:
        base = f"{self.name}.{self.namespace}"
        return frozenset({base, f"{base}.svc", f"{base}.svc.{self.cluster_domain}"})

    def is_host(self, host: object, vs_namespace: str) -> bool:
        """Whether `host`, written in a VirtualService of `vs_namespace`, means this Service."""
        if not isinstance(host, str):
            return False
        normalized = host.strip().lower().rstrip(".")
        if "." not in normalized:
            # Istio resolves a short name in the VirtualService's own namespace.
            return normalized == self.name and vs_namespace == self.namespace
        return normalized in self.qualified_names


def name_of(vs: Mapping[str, Any]) -> str:
    return str(vs.get("metadata", {}).get("name", ""))


def namespace_of(vs: Mapping[str, Any]) -> str:
    return str(vs.get("metadata", {}).get("namespace", ""))


def http_routes(vs: Mapping[str, Any]) -> list[Json]:
    routes = (vs.get("spec") or {}).get("http") or []
    return [r if isinstance(r, dict) else {} for r in routes]


def sends_to(route: Mapping[str, Any], target: ServiceTarget, vs_namespace: str) -> bool:
    destinations = route.get("route") or []
    return any(
        target.is_host((d or {}).get("destination", {}).get("host"), vs_namespace) for d in destinations
    )


def routes_http_to(vs: Mapping[str, Any], target: ServiceTarget) -> bool:
    return any(sends_to(r, target, namespace_of(vs)) for r in http_routes(vs))


def unfaultable_protocols(vs: Mapping[str, Any], target: ServiceTarget) -> list[str]:
    """The protocols (`tcp`, `tls`) this VirtualService routes to the Service without HTTP faults."""
    spec = vs.get("spec") or {}
    return [
        protocol
        for protocol in ("tcp", "tls")
        if any(sends_to(r or {}, target, namespace_of(vs)) for r in spec.get(protocol) or [])
    ]


def claims_host(vs: Mapping[str, Any], target: ServiceTarget) -> bool:
    return any(target.is_host(h, namespace_of(vs)) for h in (vs.get("spec") or {}).get("hosts") or [])


def gateway_only(vs: Mapping[str, Any]) -> list[str]:
    """The gateways a VirtualService is bound to when it does not also apply to the mesh, else []."""
    gateways = [str(g) for g in (vs.get("spec") or {}).get("gateways") or []]
    return [] if not gateways or "mesh" in gateways else gateways


def route_label(route: Mapping[str, Any], index: int) -> str:
    return f"'{route['name']}'" if route.get("name") else f"#{index + 1}"


# --------------------------------------------------------------------- the annotation (marks)


@dataclass(frozen=True)
class Mark:
    """One experiment's entry in the annotation."""

    expires: datetime
    routes: tuple[str, ...]


def format_expiry(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("expiry times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_expiry(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def annotations_of(vs: Mapping[str, Any]) -> dict[str, str] | None:
    """metadata.annotations exactly as stored, None when the map is absent."""
    annotations = vs.get("metadata", {}).get("annotations")
    return dict(annotations) if isinstance(annotations, dict) else None


def raw_marks(vs: Mapping[str, Any]) -> dict[str, Any]:
    """The annotation's JSON object, {} when absent. Anything else is refused rather than
    overwritten: it may be the only record of a fault still in the cluster."""
    text = (annotations_of(vs) or {}).get(ANNOTATION)
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise FaultPlanError(
            f"annotation {ANNOTATION} of VirtualService {name_of(vs)} is not a JSON object; "
            "fix or remove it by hand before meshbot changes this VirtualService"
        )
    return value


def parse_mark(raw: object) -> Mark | None:
    """An entry of the annotation, or None when it is not one meshbot wrote."""
    if not isinstance(raw, dict):
        return None
    routes = raw.get("routes")
    if not isinstance(routes, list) or not all(isinstance(r, str) for r in routes):
        return None
    try:
        expires = parse_expiry(str(raw.get("expires")))
    except ValueError:
        return None
    return Mark(expires, tuple(routes))


def marks_of(vs: Mapping[str, Any]) -> dict[str, Mark]:
    """The well-formed entries of the annotation, by experiment id; unreadable ones are skipped."""
    try:
        entries = raw_marks(vs)
    except FaultPlanError:
        return {}
    parsed = {experiment: parse_mark(raw) for experiment, raw in entries.items()}
    return {experiment: mark for experiment, mark in parsed.items() if mark is not None}


def encode_marks(marks: Mapping[str, Any]) -> str:
    return json.dumps(marks, sort_keys=True, separators=(",", ":"))


def pointer(*tokens: str | int) -> str:
    """An RFC 6901 JSON Pointer: `/` and `~` inside a token are escaped."""
    return "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)


ANNOTATIONS_PATH = pointer("metadata", "annotations")
ANNOTATION_PATH = pointer("metadata", "annotations", ANNOTATION)


def add_mark_ops(vs: Mapping[str, Any], experiment_id: str, mark: Mark) -> Ops:
    entries = raw_marks(vs)
    entries[experiment_id] = {"expires": format_expiry(mark.expires), "routes": list(mark.routes)}
    encoded = encode_marks(entries)
    if annotations_of(vs) is None:
        return [{"op": "add", "path": ANNOTATIONS_PATH, "value": {ANNOTATION: encoded}}]
    return [{"op": "add", "path": ANNOTATION_PATH, "value": encoded}]


def drop_mark_ops(vs: Mapping[str, Any], experiment_id: str) -> Ops:
    """Ops removing one experiment's entry, guarded by a test of the annotation as read, so an
    entry another experiment added meanwhile is never lost. An annotation left empty goes, and
    so does a map left empty: meshbot only adds the map when there was none (the API server does
    not keep empty maps in metadata), so that restores it as it was."""
    annotations = annotations_of(vs) or {}
    entries = raw_marks(vs)
    entries.pop(experiment_id, None)
    if not entries and set(annotations) == {ANNOTATION}:
        # Testing the whole map: an annotation someone added meanwhile must not go with it.
        return [
            {"op": "test", "path": ANNOTATIONS_PATH, "value": annotations},
            {"op": "remove", "path": ANNOTATIONS_PATH},
        ]
    ops: Ops = [{"op": "test", "path": ANNOTATION_PATH, "value": annotations[ANNOTATION]}]
    if entries:
        return [*ops, {"op": "replace", "path": ANNOTATION_PATH, "value": encode_marks(entries)}]
    return [*ops, {"op": "remove", "path": ANNOTATION_PATH}]


# ------------------------------------------------------------------------- fault routes


def experiment_route_names(experiment_id: str, count: int) -> list[str]:
    base = f"{ROUTE_PREFIX}{experiment_id}"
    return [base if i == 0 else f"{base}-{i + 1}" for i in range(count)]


def _matches_exactly(matcher: object, value: str) -> bool | None:
    """Whether a header carrying exactly `value` satisfies an Istio StringMatch; None if unknown."""
    if not isinstance(matcher, dict) or len(matcher) != 1:
        return None
    (kind, expected), *_ = matcher.items()
    if not isinstance(expected, str):
        return None
    if kind == "exact":
        return value == expected
    if kind == "prefix":
        return value.startswith(expected)
    if kind == "regex":
        try:
            return re.fullmatch(expected, value) is not None
        except re.error:
            return None
    return None


def _restrict_condition(condition: Mapping[str, Any], headers: Mapping[str, str]) -> Json | None:
    """`condition` AND `headers`, as one condition; None when no request can satisfy both.

    Where the condition already matches one of the headers, the exact match replaces it only if it
    implies it; otherwise the fault route could catch requests the original route never saw and
    send them to its destinations, changing routing, so the condition is dropped instead.
    """
    restricted = copy.deepcopy(dict(condition))
    existing = {str(k).lower(): v for k, v in (restricted.get("headers") or {}).items()}
    excluded = {str(k).lower(): v for k, v in (restricted.get("withoutHeaders") or {}).items()}
    for name, value in headers.items():
        if name in existing and _matches_exactly(existing[name], value) is not True:
            return None
        if name in excluded and _matches_exactly(excluded[name], value) is not False:
            return None
        existing[name] = {"exact": value}
    restricted["headers"] = existing
    return restricted


def restrict_match(match: object, headers: Mapping[str, str]) -> list[Json] | None:
    """A route's `match` AND-ed with exact header matches. Returns None for "matches everything"
    (no headers, no match) and [] when no condition can hold together with the headers."""
    conditions = [c for c in match if isinstance(c, dict)] if isinstance(match, list) else []
    if not headers:
        return copy.deepcopy(conditions) or None
    if not conditions:
        return [{"headers": {name: {"exact": value} for name, value in headers.items()}}]
    restricted = [_restrict_condition(c, headers) for c in conditions]
    return [c for c in restricted if c is not None]


# Fields of a route that the fault route must not copy: its own identity and fault, and retries and
# timeouts, which do not apply to a fault (an abort is a local reply; a delay runs before the timer).
_NOT_COPIED = ("name", "match", "fault", "retries", "timeout")


def fault_route(shadowed: Mapping[str, Any], match: list[Json] | None, spec: FaultSpec, name: str) -> Json:
    """A route to put right before `shadowed`: the same traffic (narrowed by `match`) to the same
    destinations, with the fault. Rewrites, header edits and mirrors are kept so requests that the
    fault lets through are treated as before."""
    route: Json = {"name": name}
    if match is not None:
        route["match"] = match
    route.update({k: copy.deepcopy(v) for k, v in shadowed.items() if k not in _NOT_COPIED})
    route["fault"] = fault_block(spec)
    return route


@dataclass(frozen=True)
class Insertion:
    """A fault route and the index in the original `spec.http` it goes in front of."""

    before: int
    route: Json


def plan_insertions(
    vs: Mapping[str, Any], target: ServiceTarget, spec: FaultSpec, experiment_id: str
) -> tuple[list[Insertion], list[str]]:
    """A fault route in front of every HTTP route that sends to the Service (first match wins),
    with the warnings a person should read."""
    vs_name = name_of(vs)
    warnings: list[str] = []
    shadows: list[tuple[int, Json, list[Json] | None]] = []
    seen: list[tuple[Any, Any]] = []
    owner = _route_owners(vs)
    for index, route in enumerate(http_routes(vs)):
        if not sends_to(route, target, namespace_of(vs)):
            continue
        match = restrict_match(route.get("match"), spec.headers)
        if match == []:
            warnings.append(
                f"route {route_label(route, index)} of VirtualService {vs_name} already matches the "
                "headers differently, so the fault cannot apply to its traffic"
            )
            continue
        signature = (match, {k: v for k, v in route.items() if k not in _NOT_COPIED})
        if signature in seen:
            # Same traffic, same destinations as an earlier fault route: it could never be reached.
            continue
        seen.append(signature)
        shadows.append((index, route, match))
        warnings += _shadow_warnings(vs_name, route, index, owner.get(str(route.get("name"))))
    names = experiment_route_names(experiment_id, len(shadows))
    insertions = [
        Insertion(index, fault_route(route, match, spec, name))
        for (index, route, match), name in zip(shadows, names, strict=True)
    ]
    return insertions, warnings


def _route_owners(vs: Mapping[str, Any]) -> dict[str, str]:
    return {route: experiment for experiment, mark in marks_of(vs).items() for route in mark.routes}


def _shadow_warnings(vs_name: str, route: Mapping[str, Any], index: int, owner: str | None) -> list[str]:
    warnings = []
    label = route_label(route, index)
    if owner is not None:
        warnings.append(
            f"experiment {owner} already injects a fault on route {label} of VirtualService {vs_name}; "
            "Istio applies one fault per request, so this one takes precedence where both match"
        )
    ignored = [what for what in ("retries", "timeout") if route.get(what)]
    if ignored:
        warnings.append(
            f"route {label} of VirtualService {vs_name} has {' and '.join(ignored)}, which do not apply "
            "to the fault (an abort is answered locally; a delay happens before the timeout starts)"
        )
    return warnings


def insertion_ops(insertions: Sequence[Insertion]) -> Ops:
    """`add` ops in ascending order; each earlier insertion shifts the later indices by one."""
    ordered = sorted(insertions, key=lambda i: i.before)
    return [
        {"op": "add", "path": pointer("spec", "http", ins.before + shifted), "value": ins.route}
        for shifted, ins in enumerate(ordered)
    ]


# ------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class VsChange:
    """What one VirtualService gets: a JSON Patch on an existing one, or a new meshbot-owned one."""

    vs_name: str
    created: bool
    spec_before: Json | None  # None: it did not exist
    annotations_before: dict[str, str] | None  # None: metadata.annotations was absent
    resource_version: str | None
    inserted_routes: list[Json]
    patch: Ops  # empty when created
    body: Json | None  # the object to create, when created


@dataclass(frozen=True)
class FaultChanges:
    changes: list[VsChange]
    warnings: list[str]


def plan_patch(
    vs: Mapping[str, Any],
    target: ServiceTarget,
    spec: FaultSpec,
    experiment_id: str,
    expires_at: datetime,
) -> tuple[VsChange | None, list[str]]:
    """The change to one existing VirtualService, or None when none of its HTTP routes send to the
    Service. The patch first tests resourceVersion: it only applies to the object as read."""
    insertions, warnings = plan_insertions(vs, target, spec, experiment_id)
    if not insertions:
        return None, warnings
    metadata = vs.get("metadata", {})
    routes = [i.route for i in sorted(insertions, key=lambda i: i.before)]
    mark = Mark(expires_at, tuple(r["name"] for r in routes))
    ops: Ops = [
        {
            "op": "test",
            "path": pointer("metadata", "resourceVersion"),
            "value": metadata.get("resourceVersion"),
        },
        *insertion_ops(insertions),
        *add_mark_ops(vs, experiment_id, mark),
    ]
    change = VsChange(
        vs_name=name_of(vs),
        created=False,
        spec_before=copy.deepcopy(dict(vs.get("spec") or {})),
        annotations_before=annotations_of(vs),
        resource_version=metadata.get("resourceVersion"),
        inserted_routes=routes,
        patch=ops,
        body=None,
    )
    return change, warnings


def owned_vs_name(service: str) -> str:
    return f"{ROUTE_PREFIX}{service}"


def default_route(target: ServiceTarget) -> Json:
    return {"name": DEFAULT_ROUTE_NAME, "route": [{"destination": {"host": target.name}}]}


def new_virtual_service(
    target: ServiceTarget, spec: FaultSpec, experiment_id: str, expires_at: datetime
) -> Json:
    """A meshbot-owned VirtualService for a Service no VirtualService routes to: the fault route,
    then a plain route so requests the fault spares flow as without a VirtualService."""
    fallback = default_route(target)
    (name,) = experiment_route_names(experiment_id, 1)
    fault = fault_route(fallback, restrict_match(None, spec.headers), spec, name)
    mark = {experiment_id: {"expires": format_expiry(expires_at), "routes": [name]}}
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {
            "name": owned_vs_name(target.name),
            "namespace": target.namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY},
            "annotations": {ANNOTATION: encode_marks(mark)},
        },
        "spec": {"hosts": [target.name], "http": [fault, fallback]},
    }


def plan_changes(
    virtual_services: Sequence[Mapping[str, Any]],
    *,
    target: ServiceTarget,
    spec: FaultSpec,
    experiment_id: str,
    expires_at: datetime,
) -> FaultChanges:
    """Every change that puts the fault on all HTTP traffic the namespace's VirtualServices send to
    the Service — or, when none does, one new meshbot-owned VirtualService."""
    validate_experiment_id(experiment_id)
    format_expiry(expires_at)
    _refuse_duplicate_experiment(virtual_services, experiment_id)
    warnings = _namespace_warnings(virtual_services, target)
    changes: list[VsChange] = []
    for vs in sorted(virtual_services, key=name_of):
        change, vs_warnings = plan_patch(vs, target, spec, experiment_id, expires_at)
        warnings += vs_warnings
        if change is not None:
            changes.append(change)
            warnings += _vs_warnings(vs)
    if not changes:
        changes.append(_creation(virtual_services, target, spec, experiment_id, expires_at))
    return FaultChanges(changes, warnings)


def _creation(
    virtual_services: Sequence[Mapping[str, Any]],
    target: ServiceTarget,
    spec: FaultSpec,
    experiment_id: str,
    expires_at: datetime,
) -> VsChange:
    unreachable = [name_of(vs) for vs in virtual_services if routes_http_to(vs, target)]
    if unreachable:
        wanted = ", ".join(f"{k}={v}" for k, v in spec.headers.items())
        raise FaultPlanError(
            f"every route of VirtualService {', '.join(unreachable)} to {target.name} already matches "
            f"headers that contradict {wanted}, so no request could get the fault"
        )
    # Sidecars do not merge several VirtualServices for one host (IST0109): never add a second.
    claiming = [name_of(vs) for vs in virtual_services if claims_host(vs, target)]
    if claiming:
        raise FaultPlanError(
            f"VirtualService {', '.join(claiming)} already serves {target.name} but sends none of its "
            f"HTTP traffic to it, so there is no route to put the fault on"
        )
    name = owned_vs_name(target.name)
    if any(name_of(vs) == name for vs in virtual_services):
        raise FaultPlanError(
            f"VirtualService {name} exists but does not route to {target.name}; meshbot will not "
            "take over a VirtualService it did not create that way"
        )
    body = new_virtual_service(target, spec, experiment_id, expires_at)
    return VsChange(
        vs_name=body["metadata"]["name"],
        created=True,
        spec_before=None,
        annotations_before=None,
        resource_version=None,
        inserted_routes=[body["spec"]["http"][0]],
        patch=[],
        body=body,
    )


def _refuse_duplicate_experiment(virtual_services: Iterable[Mapping[str, Any]], experiment_id: str) -> None:
    for vs in virtual_services:
        if experiment_id in raw_marks(vs):
            raise FaultPlanError(
                f"experiment {experiment_id} already has a fault on VirtualService {name_of(vs)}"
            )


def _namespace_warnings(virtual_services: Sequence[Mapping[str, Any]], target: ServiceTarget) -> list[str]:
    warnings = []
    claiming = sorted(name_of(vs) for vs in virtual_services if claims_host(vs, target))
    if len(claiming) > 1:
        warnings.append(
            f"{len(claiming)} VirtualServices are for {target.name} ({', '.join(claiming)}); sidecars do "
            "not merge them (IST0109), so only one of them takes effect for calls inside the mesh"
        )
    for vs in sorted(virtual_services, key=name_of):
        protocols = unfaultable_protocols(vs, target)
        if protocols:
            warnings.append(
                f"VirtualService {name_of(vs)} routes {'/'.join(protocols)} traffic to {target.name}; Istio "
                "cannot inject faults into tcp/tls routes, so that traffic is not affected"
            )
    return warnings


def _vs_warnings(vs: Mapping[str, Any]) -> list[str]:
    gateways = gateway_only(vs)
    if not gateways:
        return []
    return [
        f"VirtualService {name_of(vs)} is bound to gateway {', '.join(gateways)} only: the fault hits "
        "requests coming in through it, not calls between services inside the mesh"
    ]


# -------------------------------------------------------------------------------- removal


@dataclass(frozen=True)
class Removal:
    """Taking one experiment's fault out of one VirtualService."""

    vs_name: str
    experiment_id: str
    patch: Ops
    removed_routes: list[str]
    missing_routes: list[str]  # recorded in the annotation but gone already
    delete_vs: bool  # a meshbot-owned VirtualService with nothing left in it but its default route


def plan_removal(vs: Mapping[str, Any], experiment_id: str) -> Removal | None:
    """The JSON Patch removing exactly the experiment's routes (found by name, highest index first,
    each guarded by a test of its name at that index) and its annotation entry. None when the
    VirtualService carries no such experiment. Routes anyone else added stay untouched."""
    entries = raw_marks(vs)
    if experiment_id not in entries:
        return None
    mark = parse_mark(entries[experiment_id])
    wanted = set(mark.routes) if mark else set()
    found = [(i, r["name"]) for i, r in enumerate(http_routes(vs)) if r.get("name") in wanted]
    ops: Ops = []
    for index, name in sorted(found, reverse=True):
        ops.append({"op": "test", "path": pointer("spec", "http", index, "name"), "value": name})
        ops.append({"op": "remove", "path": pointer("spec", "http", index)})
    ops += drop_mark_ops(vs, experiment_id)
    removed = {name for _, name in found}
    return Removal(
        vs_name=name_of(vs),
        experiment_id=experiment_id,
        patch=ops,
        removed_routes=[name for _, name in sorted(found)],
        missing_routes=sorted(wanted - removed),
        delete_vs=_left_empty(vs, experiment_id, removed),
    )


def is_meshbot_owned(vs: Mapping[str, Any]) -> bool:
    return (vs.get("metadata", {}).get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY


def _left_empty(vs: Mapping[str, Any], experiment_id: str, removed: set[str]) -> bool:
    if not is_meshbot_owned(vs) or set(raw_marks(vs)) - {experiment_id}:
        return False
    spec = vs.get("spec") or {}
    if spec.get("tcp") or spec.get("tls"):
        return False
    remaining = [r for r in http_routes(vs) if r.get("name") not in removed]
    return all(r.get("name") == DEFAULT_ROUTE_NAME for r in remaining)


def expiry_ops(vs: Mapping[str, Any], experiment_id: str, expires_at: datetime) -> Ops:
    """Ops moving one experiment's expiry, guarded by a test of the annotation as read."""
    annotations = annotations_of(vs) or {}
    entries = raw_marks(vs)
    entry = dict(entries[experiment_id])
    entry["expires"] = format_expiry(expires_at)
    entries[experiment_id] = entry
    return [
        {"op": "test", "path": ANNOTATION_PATH, "value": annotations[ANNOTATION]},
        {"op": "replace", "path": ANNOTATION_PATH, "value": encode_marks(entries)},
    ]
