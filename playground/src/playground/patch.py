"""The three PATCH bodies kube-apiserver accepts, applied to plain JSON objects.

* ``application/merge-patch+json``: RFC 7386 JSON merge patch (``apply_merge_patch``).
* ``application/json-patch+json``: RFC 6902 JSON patch (``apply_json_patch``).
* ``application/strategic-merge-patch+json``: Kubernetes strategic merge patch for the built-in
  kinds (``apply_strategic_merge_patch``), driven by a table of the patch strategies that the
  Go types declare with ``patchStrategy``/``patchMergeKey`` tags.

None of the functions mutates its arguments; each returns a new object. Errors are ``ApiError``
with the status codes kube-apiserver uses: 400 BadRequest for a patch that cannot be read, 422
Invalid for a JSON patch operation that cannot be applied.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from playground.errors import ApiError, Cause, bad_request

__all__ = ["apply_json_patch", "apply_merge_patch", "apply_strategic_merge_patch"]


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def json_equal(left: Any, right: Any) -> bool:
    """Equality of decoded JSON values: 1 == 1.0, but true is not 1 (unlike Python's ==)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    return type(left) is type(right) and left == right


def go_format(value: Any) -> str:
    """Go's ``%v`` for decoded JSON, which the upstream error messages embed."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_format(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_format(item) for item in value) + "]"
    return str(value)


# --------------------------------------------------------------------------------------------
# RFC 7386 JSON merge patch
# --------------------------------------------------------------------------------------------


def apply_merge_patch(target: dict[str, Any], patch: object) -> dict[str, Any]:
    """Applies a JSON merge patch: objects merge recursively, ``null`` deletes, the rest replaces.

    As with the library kube-apiserver uses, nulls inside newly added objects are dropped, and a
    patch that is not an object is refused (it would replace the whole resource).
    """
    if not isinstance(patch, dict):
        raise bad_request("Invalid JSON Patch")
    return _merge_patch_object(target, patch)


def _merge_patch_object(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    merged = {key: value for key, value in target.items() if key not in patch}
    merged = copy.deepcopy(merged)
    for key, value in patch.items():
        if value is None:
            continue
        merged[key] = _merge_patch_value(target.get(key), value)
    # Keep the target's key order: patched keys stay where they were, new ones go last.
    ordered = {key: merged[key] for key in target if key in merged}
    ordered.update((key, merged[key]) for key in merged if key not in ordered)
    return ordered


def _merge_patch_value(current: Any, patch: Any) -> Any:
    if isinstance(patch, dict):
        return _merge_patch_object(current if isinstance(current, dict) else {}, patch)
    if isinstance(patch, list):
        return [_without_object_nulls(item) for item in patch]
    return patch


def _without_object_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_object_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_object_nulls(item) for item in value]
    return value


# --------------------------------------------------------------------------------------------
# RFC 6902 JSON patch
# --------------------------------------------------------------------------------------------

_OPERATIONS = ("add", "remove", "replace", "move", "copy", "test")
_ARRAY_INDEX = re.compile(r"^(0|[1-9][0-9]*)$")


@dataclass(frozen=True)
class _Operation:
    op: str
    path: str
    tokens: tuple[str, ...]
    from_path: str = ""
    from_tokens: tuple[str, ...] = ()
    value: Any = None


class _NotApplicable(Exception):
    """An operation that is well formed but does not fit the document (HTTP 422)."""


def apply_json_patch(target: dict[str, Any], operations: object) -> dict[str, Any]:
    """Applies an RFC 6902 JSON patch, all operations or none.

    A malformed patch document is a 400; an operation that does not fit the object (missing
    path, failed test, index out of range) is the 422 kube-apiserver returns, whose message is
    generic upstream; the specific reason is added as the cause.
    """
    decoded = _decode_operations(operations)
    document: Any = copy.deepcopy(target)
    for operation in decoded:
        try:
            document = _apply_operation(document, operation)
        except _NotApplicable as error:
            raise _patch_not_applicable(str(error), operation.path) from None
    return dict(document)


def _patch_not_applicable(detail: str, path: str) -> ApiError:
    return ApiError(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
        causes=[Cause("FieldValueInvalid", detail, path)],
    )


def _decode_operations(operations: object) -> list[_Operation]:
    if operations is None:
        return []  # JSON null decodes to an empty patch upstream.
    if not isinstance(operations, list):
        kind = _go_json_kind(operations)
        raise bad_request(f"json: cannot unmarshal {kind} into Go value of type jsonpatch.Patch")
    return [_decode_operation(operation) for operation in operations]


def _go_json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    return "string" if isinstance(value, str) else "value"


def _decode_operation(raw: object) -> _Operation:
    if not isinstance(raw, dict):
        kind = _go_json_kind(raw)
        raise bad_request(f"json: cannot unmarshal {kind} into Go value of type jsonpatch.Operation")
    op = raw.get("op")
    if not isinstance(op, str) or op not in _OPERATIONS:
        raise bad_request(f"Unexpected kind: {op if isinstance(op, str) else 'unknown'}")
    path = _string_member(raw, "path", op)
    tokens = _parse_pointer(path)
    if op in ("add", "replace", "test") and "value" not in raw:
        raise bad_request(f"{op} operation, missing value field: missing value")
    if op not in ("move", "copy"):
        return _Operation(op, path, tokens, value=raw.get("value"))
    from_path = _string_member(raw, "from", op)
    return _Operation(op, path, tokens, from_path, _parse_pointer(from_path))


def _string_member(raw: Mapping[str, Any], member: str, op: str) -> str:
    value = raw.get(member)
    if not isinstance(value, str):
        raise bad_request(f"{op} operation failed to decode {member}: missing value")
    return value


def _parse_pointer(pointer: str) -> tuple[str, ...]:
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise bad_request(f'invalid JSON pointer "{pointer}": it must be empty or start with "/"')
    if re.search(r"~(?![01])", pointer):
        raise bad_request(f'invalid JSON pointer "{pointer}": "~" must be followed by 0 or 1')
    return tuple(part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/"))


def _apply_operation(document: Any, operation: _Operation) -> Any:
    if operation.op == "add":
        return _add(document, operation.tokens, copy.deepcopy(operation.value), operation)
    if operation.op == "remove":
        return _remove(document, operation.tokens, operation)
    if operation.op == "replace":
        _get(
            document,
            operation.tokens,
            f"replace operation does not apply: doc is missing key: {operation.path}",
        )
        document = _remove(document, operation.tokens, operation)
        return _add(document, operation.tokens, copy.deepcopy(operation.value), operation)
    if operation.op == "test":
        current = _get(
            document, operation.tokens, f"test operation does not apply: is missing path: {operation.path}"
        )
        if not json_equal(current, operation.value):
            raise _NotApplicable(f"testing value {operation.path} failed: test failed")
        return document
    value = _get(
        document,
        operation.from_tokens,
        f"{operation.op} operation does not apply: doc is missing from path: {operation.from_path}",
    )
    if operation.op == "copy":
        return _add(document, operation.tokens, copy.deepcopy(value), operation)
    if operation.tokens[: len(operation.from_tokens)] == operation.from_tokens and (
        operation.tokens != operation.from_tokens
    ):
        raise _NotApplicable(
            f"move operation does not apply: {operation.from_path} cannot be moved into its own "
            f"child {operation.path}"
        )
    document = _remove(document, operation.from_tokens, operation)
    return _add(document, operation.tokens, value, operation)


def _missing_path(operation: _Operation) -> _NotApplicable:
    return _NotApplicable(
        f'{operation.op} operation does not apply: doc is missing path: "{operation.path}": missing value'
    )


def _get(document: Any, tokens: Sequence[str], missing: str) -> Any:
    current = document
    for token in tokens:
        if isinstance(current, dict) and token in current:
            current = current[token]
        elif isinstance(current, list) and _ARRAY_INDEX.match(token) and int(token) < len(current):
            current = current[int(token)]
        else:
            raise _NotApplicable(f"{missing}: missing value")
    return current


def _parent(document: Any, tokens: Sequence[str], operation: _Operation) -> Any:
    if not tokens:
        # The library kube-apiserver uses has no notion of replacing the whole document.
        raise _missing_path(operation)
    try:
        parent = _get(document, tokens[:-1], "")
    except _NotApplicable:
        raise _missing_path(operation) from None
    if not isinstance(parent, dict | list):
        raise _missing_path(operation)
    return parent


def _array_index(token: str, length: int, operation: _Operation) -> int:
    if not _ARRAY_INDEX.match(token):
        raise _NotApplicable(
            f"error in {operation.op} for path: '{operation.path}': value was not a proper array "
            f"index: '{token}'"
        )
    index = int(token)
    if index > length:
        raise _NotApplicable(
            f"error in {operation.op} for path: '{operation.path}': Unable to access invalid "
            f"index: {index}: invalid index referenced"
        )
    return index


def _add(document: Any, tokens: Sequence[str], value: Any, operation: _Operation) -> Any:
    parent = _parent(document, tokens, operation)
    key = tokens[-1]
    if isinstance(parent, dict):
        parent[key] = value
    elif key == "-":
        parent.append(value)
    else:
        parent.insert(_array_index(key, len(parent), operation), value)
    return document


def _remove(document: Any, tokens: Sequence[str], operation: _Operation) -> Any:
    parent = _parent(document, tokens, operation)
    key = tokens[-1]
    if isinstance(parent, dict):
        if key not in parent:
            raise _NotApplicable(
                f"error in remove for path: '{operation.path}': Unable to remove nonexistent key: "
                f"{key}: missing value"
            )
        del parent[key]
        return document
    index = _array_index(key, len(parent) - 1, operation)
    del parent[index]
    return document


# --------------------------------------------------------------------------------------------
# Strategic merge patch
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Strategy:
    """How one field merges. The default, an empty strategy, means: maps merge, lists replace."""

    merge_key: str | None = None
    merge_set: bool = False
    # Strategies of the fields of this value, or of each item when the value is a list.
    fields: Mapping[str, _Strategy] = field(default_factory=dict)

    @property
    def merges_lists(self) -> bool:
        return self.merge_key is not None or self.merge_set


_ATOMIC = _Strategy()


def _keyed(merge_key: str, **fields: _Strategy) -> _Strategy:
    return _Strategy(merge_key=merge_key, fields=fields)


def _nested(**fields: _Strategy) -> _Strategy:
    return _Strategy(fields=fields)


_OBJECT_META = _nested(ownerReferences=_keyed("uid"), finalizers=_Strategy(merge_set=True))
_CONTAINER_FIELDS = {
    "env": _keyed("name"),
    "ports": _keyed("containerPort"),
    "volumeMounts": _keyed("mountPath"),
    "volumeDevices": _keyed("devicePath"),
}
_POD_SPEC = _nested(
    containers=_keyed("name", **_CONTAINER_FIELDS),
    initContainers=_keyed("name", **_CONTAINER_FIELDS),
    ephemeralContainers=_keyed("name", **_CONTAINER_FIELDS),
    volumes=_keyed("name"),
    imagePullSecrets=_keyed("name"),
    hostAliases=_keyed("ip"),
    topologySpreadConstraints=_keyed("topologyKey"),
    schedulingGates=_keyed("name"),
    resourceClaims=_keyed("name"),
)
_POD_TEMPLATE = _nested(metadata=_OBJECT_META, spec=_POD_SPEC)
_CONDITIONS_STATUS = _nested(conditions=_keyed("type"))
_WORKLOAD = {"spec": _nested(template=_POD_TEMPLATE), "status": _CONDITIONS_STATUS}

_KIND_STRATEGIES: dict[str, dict[str, _Strategy]] = {
    "Pod": {
        "spec": _POD_SPEC,
        "status": _nested(conditions=_keyed("type"), podIPs=_keyed("ip"), hostIPs=_keyed("ip")),
    },
    "PodTemplate": {"template": _POD_TEMPLATE},
    "Deployment": _WORKLOAD,
    "ReplicaSet": _WORKLOAD,
    "ReplicationController": _WORKLOAD,
    "StatefulSet": _WORKLOAD,
    "DaemonSet": _WORKLOAD,
    "Job": _WORKLOAD,
    "CronJob": {
        "spec": _nested(jobTemplate=_nested(metadata=_OBJECT_META, spec=_nested(template=_POD_TEMPLATE)))
    },
    "Service": {"spec": _nested(ports=_keyed("port")), "status": _CONDITIONS_STATUS},
    "ServiceAccount": {"secrets": _keyed("name")},
    "Namespace": {"status": _CONDITIONS_STATUS},
    "PersistentVolumeClaim": {"status": _CONDITIONS_STATUS},
    "Node": {
        "spec": _nested(podCIDRs=_Strategy(merge_set=True)),
        "status": _nested(conditions=_keyed("type"), addresses=_keyed("type")),
    },
}

_PATCH = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ELEMENT_ORDER = "$setElementOrder"
_DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"
# JSON-schema keywords that CustomResourceDefinition schemas hold as ordinary fields.
_DOLLAR_DATA_KEYS = frozenset({"$ref", "$schema"})

_BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
_BAD_SET_ELEMENT_ORDER = "invalid patch format of setElementOrder list"


def apply_strategic_merge_patch(target: dict[str, Any], patch: object, kind: str) -> dict[str, Any]:
    """Applies a strategic merge patch to an object of a built-in ``kind``.

    Maps merge recursively and ``null`` deletes a key; lists merge by key (or as sets) where the
    Kubernetes type says so and are replaced otherwise. Directives: ``$patch`` (replace, delete,
    merge), ``$retainKeys``, ``$setElementOrder/<list>`` and ``$deleteFromPrimitiveList/<list>``.
    Any other key starting with ``$`` is refused.
    """
    if not isinstance(patch, dict):
        raise bad_request("invalid JSON document")
    fields = {"metadata": _OBJECT_META, **_KIND_STRATEGIES.get(kind, {})}
    return _merge_map(copy.deepcopy(target), patch, fields)


def _merge_map(
    original: dict[str, Any], patch: Mapping[str, Any], fields: Mapping[str, _Strategy]
) -> dict[str, Any]:
    """Merges ``patch`` into ``original``, which this call owns and may change."""
    pending = dict(patch)
    if _PATCH in pending:
        directive = pending.pop(_PATCH)
        if directive == "delete":
            return {}
        if directive == "replace":
            return _merge_map({}, pending, fields)
        if directive != "merge":
            raise bad_request(f"unknown patch type: {go_format(directive)} in map: {go_format(patch)}")
    _apply_retain_keys(original, pending)
    _apply_element_orders(original, pending, fields)
    for key, value in pending.items():
        _merge_field(original, key, value, fields)
    return original


def _merge_field(original: dict[str, Any], key: str, value: Any, fields: Mapping[str, _Strategy]) -> None:
    if key.startswith(_DELETE_FROM_PRIMITIVE_LIST):
        _delete_from_primitive_list(original, _directive_target(key, _BAD_PRIMITIVE_LIST), value)
        return
    if key.startswith("$") and key not in _DOLLAR_DATA_KEYS:
        raise bad_request(f"unknown strategic merge patch directive: {key}")
    strategy = fields.get(key, _ATOMIC)
    if value is None:
        original.pop(key, None)
        return
    current = original.get(key)
    if isinstance(value, dict) and isinstance(current, dict):
        original[key] = _merge_map(current, value, strategy.fields)
    elif isinstance(value, list) and isinstance(current, list):
        original[key] = _merge_list(current, value, strategy)
    else:
        original[key] = _materialize(value, strategy)


def _materialize(value: Any, strategy: _Strategy) -> Any:
    """A patch value that has nothing to merge with, cleaned of directives and nulls."""
    if isinstance(value, dict):
        return _merge_map({}, value, strategy.fields)
    if isinstance(value, list):
        return _merge_list([], value, strategy)
    return value


def _directive_target(key: str, error: str) -> str:
    prefix, _, target = key.partition("/")
    if not target or prefix not in (_SET_ELEMENT_ORDER, _DELETE_FROM_PRIMITIVE_LIST):
        raise bad_request(error)
    return target


# --- $retainKeys and $deleteFromPrimitiveList ---------------------------------------------------


def _apply_retain_keys(original: dict[str, Any], pending: dict[str, Any]) -> None:
    if _RETAIN_KEYS not in pending:
        return
    retained = pending.pop(_RETAIN_KEYS)
    if not isinstance(retained, list):
        raise bad_request(_BAD_RETAIN_KEYS)
    for key, value in pending.items():
        directive = key.startswith((_SET_ELEMENT_ORDER, _DELETE_FROM_PRIMITIVE_LIST))
        if value is not None and not directive and key not in retained:
            raise bad_request(_BAD_RETAIN_KEYS)
    for key in [key for key in original if key not in retained]:
        del original[key]


def _delete_from_primitive_list(original: dict[str, Any], key: str, doomed: Any) -> None:
    if not isinstance(doomed, list) or any(isinstance(item, dict | list) for item in doomed):
        raise bad_request(_BAD_PRIMITIVE_LIST)
    current = original.get(key)
    if not isinstance(current, list):
        return
    if any(isinstance(item, dict | list) for item in current):
        raise bad_request(_BAD_PRIMITIVE_LIST)
    original[key] = [item for item in current if not _contains(doomed, item, None)]


# --- lists ------------------------------------------------------------------------------------


def _merge_list(current: list[Any], patch: list[Any], strategy: _Strategy) -> list[Any]:
    if not strategy.merges_lists:
        return [_materialize(item, _nested(**strategy.fields)) for item in patch]
    if not current and not patch:
        return []
    holds_maps = _list_holds_maps(current + patch)
    if holds_maps and strategy.merge_key is None:
        raise bad_request("cannot merge lists without merge key for type map")
    if not holds_maps and strategy.merge_key is not None:
        scalar = next(item for item in current + patch)
        raise bad_request(f"expected a map[string]interface {{}}, but received a {_go_type(scalar)}")
    if strategy.merge_key is None:
        merged = _unique(current + patch)
        return _normalize_order(merged, patch, current, None)
    return _merge_keyed_list(current, patch, strategy.merge_key, strategy.fields)


def _list_holds_maps(items: list[Any]) -> bool:
    if any(isinstance(item, list) for item in items):
        raise ApiError(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
            causes=[Cause("FieldValueInvalid", "lists of lists are not supported", "")],
        )
    maps = sum(isinstance(item, dict) for item in items)
    if 0 < maps < len(items):
        raise bad_request(f"list element types are not identical: {go_format(items)}")
    return maps > 0


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    return {float: "float64", str: "string"}.get(type(value), "<nil>")


def _merge_keyed_list(
    current: list[Any], patch: list[Any], merge_key: str, fields: Mapping[str, _Strategy]
) -> list[Any]:
    survivors, plain, replace = _apply_list_directives(current, patch, merge_key)
    if replace:
        return [_merge_map({}, item, fields) for item in plain]
    merged = list(survivors)
    for item in plain:
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
        position = _position(merged, item, merge_key)
        if position is None:
            merged.append(_merge_map({}, item, fields))
        else:
            merged[position] = _merge_map(merged[position], item, fields)
    return _normalize_order(merged, plain, survivors, merge_key)


def _apply_list_directives(
    current: list[Any], patch: list[Any], merge_key: str
) -> tuple[list[Any], list[Any], bool]:
    """Handles ``$patch`` list elements: returns the surviving items, the plain patch items and
    whether the whole list is to be replaced by them."""
    survivors = list(current)
    plain: list[Any] = []
    replace = False
    for item in patch:
        if _PATCH not in item:
            plain.append(item)
            continue
        directive = item[_PATCH]
        if directive == "delete":
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            survivors = [kept for kept in survivors if not _same_item(kept, item, merge_key)]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise bad_request("merging lists cannot yet be specified in the patch")
        else:
            raise bad_request(f"unknown patch type: {go_format(directive)} in map: {go_format(item)}")
    return survivors, plain, replace


def _no_merge_key(item: Mapping[str, Any], merge_key: str) -> ApiError:
    return bad_request(f"map: {go_format(dict(item))} does not contain declared merge key: {merge_key}")


def _identity(item: Any, merge_key: str | None) -> Any:
    if merge_key is None:
        return item
    return item.get(merge_key) if isinstance(item, dict) else None


def _same_item(left: Any, right: Any, merge_key: str | None) -> bool:
    if merge_key is not None and not (
        isinstance(left, dict) and merge_key in left and isinstance(right, dict) and merge_key in right
    ):
        return False
    return json_equal(_identity(left, merge_key), _identity(right, merge_key))


def _position(items: list[Any], wanted: Any, merge_key: str | None) -> int | None:
    for index, item in enumerate(items):
        if _same_item(item, wanted, merge_key):
            return index
    return None


def _contains(items: list[Any], wanted: Any, merge_key: str | None) -> bool:
    return _position(items, wanted, merge_key) is not None


def _unique(items: list[Any]) -> list[Any]:
    unique: list[Any] = []
    for item in items:
        if not _contains(unique, item, None):
            unique.append(item)
    return unique


def _normalize_order(
    merged: list[Any], patch_order: list[Any], server_order: list[Any], merge_key: str | None
) -> list[Any]:
    """Orders a merged list as upstream does: items named in the patch follow the patch's order,
    the others keep the live object's order, and the two runs interleave by live position."""
    from_patch = [item for item in merged if _contains(patch_order, item, merge_key)]
    server_only = [item for item in merged if not _contains(patch_order, item, merge_key)]
    return _interleave(
        _sorted_by(server_only, server_order, merge_key),
        _sorted_by(from_patch, patch_order, merge_key),
        server_order,
        merge_key,
    )


def _sorted_by(items: list[Any], order: list[Any], merge_key: str | None) -> list[Any]:
    def rank(item: Any) -> int:
        position = _position(order, item, merge_key)
        return len(order) if position is None else position

    return sorted(items, key=rank)


def _interleave(
    server_only: list[Any], from_patch: list[Any], server_order: list[Any], merge_key: str | None
) -> list[Any]:
    # A server-only item goes first only when both items are in the live list and it came first
    # there; so new items (absent from the live list) come before the remaining server-only ones.
    result: list[Any] = []
    left, right = 0, 0
    while left < len(server_only) or right < len(from_patch):
        if right >= len(from_patch):
            result.append(server_only[left])
            left += 1
        elif left >= len(server_only):
            result.append(from_patch[right])
            right += 1
        elif _precedes(server_only[left], from_patch[right], server_order, merge_key):
            result.append(server_only[left])
            left += 1
        else:
            result.append(from_patch[right])
            right += 1
    return result


def _precedes(left: Any, right: Any, order: list[Any], merge_key: str | None) -> bool:
    left_position = _position(order, left, merge_key)
    right_position = _position(order, right, merge_key)
    if left_position is None or right_position is None:
        return False
    return left_position < right_position


# --- $setElementOrder -------------------------------------------------------------------------


def _apply_element_orders(
    original: dict[str, Any], pending: dict[str, Any], fields: Mapping[str, _Strategy]
) -> None:
    """Merges each list named by ``$setElementOrder/<list>`` and puts it in that order.

    Items missing from the order list keep their live order and interleave as in a plain merge.
    The merged lists are taken out of ``pending`` so that they are not merged a second time.
    """
    for directive in [key for key in pending if key.startswith(_SET_ELEMENT_ORDER)]:
        order = pending.pop(directive)
        key = _directive_target(directive, _BAD_SET_ELEMENT_ORDER)
        if not isinstance(order, list):
            raise bad_request(_BAD_SET_ELEMENT_ORDER)
        strategy = fields.get(key, _ATOMIC)
        live = _list_or_none(original.get(key))
        patch_list = _list_or_none(pending.pop(key, None))
        _check_order_entries(order, strategy.merge_key)
        _check_patch_follows_order(patch_list or [], order, strategy.merge_key)
        if live is None and patch_list is None:
            continue
        if patch_list is None:
            merged = live or []
        elif live is None:
            merged = _materialize(patch_list, strategy)
        else:
            merged = _merge_list(live, patch_list, strategy)
        original[key] = _normalize_order(merged, order, live or [], strategy.merge_key)


def _list_or_none(value: Any) -> list[Any] | None:
    if value is None or isinstance(value, list):
        return value
    raise bad_request(_BAD_SET_ELEMENT_ORDER)


def _check_order_entries(order: list[Any], merge_key: str | None) -> None:
    if merge_key is None:
        return
    for entry in order:
        if not isinstance(entry, dict):
            raise bad_request(_BAD_SET_ELEMENT_ORDER)
        if merge_key not in entry:
            raise _no_merge_key(entry, merge_key)


def _check_patch_follows_order(patch_list: list[Any], order: list[Any], merge_key: str | None) -> None:
    """The items of the patch list must appear in the order list, in the same relative order."""
    items = [item for item in patch_list if not (isinstance(item, dict) and _PATCH in item)]
    if not order or not items:
        return
    position = 0
    for item in items:
        while position < len(order) and not _same_item(item, order[position], merge_key):
            position += 1
        if position == len(order):
            raise bad_request(
                f"The order in patch list:\n{go_format(patch_list)}\n doesn't match "
                f"{_SET_ELEMENT_ORDER} list:\n{go_format(order)}\n"
            )
        position += 1
