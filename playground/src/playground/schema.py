"""Custom resources checked against their CRD's ``openAPIV3Schema`` as kube-apiserver does.

``validate`` runs the request-path steps of the apiextensions apiserver on a copy of the object:

1. pruning: fields the structural schema does not declare are dropped and reported (their paths,
   e.g. ``spec.http[0].faultx``, feed strict field validation and ``unknown field`` warnings),
   except below ``x-kubernetes-preserve-unknown-fields: true`` and for ``apiVersion``, ``kind``
   and ``metadata`` of the resource itself and of ``x-kubernetes-embedded-resource`` objects;
2. defaulting: ``null`` in a non-nullable field is dropped, then ``default`` values are filled in;
3. validation with the semantics of k8s.io/kube-openapi's schema validator and the reasons and
   messages the apiserver derives from it (``FieldValueTypeInvalid``, ``FieldValueNotSupported``,
   ``FieldValueRequired``, ``FieldValueInvalid``, ``FieldValueTooLong``, ``FieldValueTooMany``,
   ``FieldValueDuplicate``), with field paths such as ``spec.http[0].fault.abort.httpStatus``.

Out of scope: ``x-kubernetes-validations`` (CEL rules) are skipped, string ``format``s (date-time,
uuid, ...) are not checked, and ``metadata`` is left to the server's ObjectMeta validation.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from playground.errors import Cause

__all__ = ["SchemaResult", "validate"]

Schema = Mapping[str, Any]

_RESOURCE_META_FIELDS = ("apiVersion", "kind", "metadata")
_INT32_RANGE = (-(2**31), 2**31 - 1)
_INT64_RANGE = (-(2**63), 2**63 - 1)
_MAX_JSON_INTEGER = 2**53


@dataclass
class SchemaResult:
    """The object as it would be stored, what is wrong with it, and what was pruned from it."""

    pruned: dict[str, Any]
    causes: list[Cause] = field(default_factory=list)
    unknown_fields: list[str] = field(default_factory=list)


def validate(obj: dict[str, Any], schema: Schema) -> SchemaResult:
    """Prunes, defaults and validates ``obj`` (a whole custom resource) against ``schema``."""
    pruned = copy.deepcopy(obj)
    unknown: list[str] = []
    _prune(pruned, schema, "", unknown, embedded=True)
    _drop_non_nullable_nulls(pruned, schema)
    _apply_defaults(pruned, schema)
    causes = _validate_value(pruned, _without_resource_meta(schema), "")
    return SchemaResult(pruned=pruned, causes=causes, unknown_fields=unknown)


def _without_resource_meta(schema: Schema) -> Schema:
    # The server validates the resource's apiVersion, kind and metadata itself.
    properties = {
        name: sub
        for name, sub in (schema.get("properties") or {}).items()
        if name not in _RESOURCE_META_FIELDS
    }
    required = [name for name in schema.get("required") or [] if name not in _RESOURCE_META_FIELDS]
    return {**schema, "properties": properties, "required": required}


def _child_path(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _index_path(path: str, index: int) -> str:
    return f"{path}[{index}]"


def _preserves_unknown(schema: Schema | None) -> bool:
    return bool(schema and schema.get("x-kubernetes-preserve-unknown-fields"))


def _is_embedded(schema: Schema | None) -> bool:
    return bool(schema and schema.get("x-kubernetes-embedded-resource"))


def _property_schema(schema: Schema | None, name: str) -> tuple[bool, Schema | None]:
    """Whether ``name`` is declared (as a property or via additionalProperties) and its schema."""
    if not schema:
        return False, None
    properties = schema.get("properties") or {}
    if name in properties:
        return True, properties[name]
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping):
        return True, additional
    if additional is True:
        return True, {"x-kubernetes-preserve-unknown-fields": True}
    return False, None


def _items_schema(schema: Schema | None) -> Schema | None:
    items = schema.get("items") if schema else None
    return items if isinstance(items, Mapping) else None


# --------------------------------------------------------------------------------------------
# Pruning
# --------------------------------------------------------------------------------------------


def _prune(
    value: Any, schema: Schema | None, path: str, unknown: list[str], *, embedded: bool = False
) -> None:
    if _preserves_unknown(schema):
        _prune_known_only(value, schema, path, unknown)
    elif isinstance(value, dict):
        _prune_object(value, schema, path, unknown, embedded or _is_embedded(schema))
    elif isinstance(value, list):
        items = _items_schema(schema)
        for index, item in enumerate(value):
            _prune(item, items, _index_path(path, index), unknown)


def _prune_object(
    value: dict[str, Any], schema: Schema | None, path: str, unknown: list[str], embedded: bool
) -> None:
    for name in list(value):
        if embedded and _is_kept_resource_field(name, value[name]):
            continue
        declared, sub_schema = _property_schema(schema, name)
        if declared:
            _prune(value[name], sub_schema, _child_path(path, name), unknown)
        else:
            unknown.append(_child_path(path, name))
            del value[name]


def _is_kept_resource_field(name: str, value: Any) -> bool:
    if name in ("apiVersion", "kind"):
        return isinstance(value, str)
    return name == "metadata"


def _prune_known_only(value: Any, schema: Schema | None, path: str, unknown: list[str]) -> None:
    """Below x-kubernetes-preserve-unknown-fields unknown fields stay; declared ones still prune."""
    if isinstance(value, dict):
        for name, item in value.items():
            if _is_embedded(schema) and name in _RESOURCE_META_FIELDS:
                continue
            declared, sub_schema = _property_schema(schema, name)
            if declared:
                _prune(item, sub_schema, _child_path(path, name), unknown)
    elif isinstance(value, list):
        items = _items_schema(schema)
        for index, item in enumerate(value):
            _prune_known_only(item, items, _index_path(path, index), unknown)


# --------------------------------------------------------------------------------------------
# Nulls and defaults
# --------------------------------------------------------------------------------------------


def _is_non_nullable(schema: Schema | None) -> bool:
    return schema is not None and not schema.get("nullable", False)


def _defaults_null_away(schema: Schema) -> bool:
    # A null the schema does not allow is dropped, unless a default will replace it.
    return _is_non_nullable(schema) and "default" not in schema


def _drop_non_nullable_nulls(value: Any, schema: Schema | None) -> None:
    if isinstance(value, dict):
        for name in list(value):
            _, sub_schema = _property_schema(schema, name)
            if value[name] is None and sub_schema is not None and _defaults_null_away(sub_schema):
                del value[name]
            else:
                _drop_non_nullable_nulls(value[name], sub_schema)
    elif isinstance(value, list):
        items = _items_schema(schema)
        for item in value:
            _drop_non_nullable_nulls(item, items)


def _apply_defaults(value: Any, schema: Schema | None) -> None:
    if schema is None:
        return
    if isinstance(value, dict):
        for name, sub_schema in (schema.get("properties") or {}).items():
            missing = name not in value or (value[name] is None and _is_non_nullable(sub_schema))
            if "default" in sub_schema and missing:
                value[name] = copy.deepcopy(sub_schema["default"])
        for name, item in value.items():
            _apply_defaults(item, _property_schema(schema, name)[1])
    elif isinstance(value, list):
        items = _items_schema(schema)
        for index, item in enumerate(value):
            if item is None and items is not None and "default" in items:
                value[index] = copy.deepcopy(items["default"])
            _apply_defaults(value[index], items)


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


def _go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _go_value(value: Any) -> str:
    """How field.Error renders a bad value: %q for strings, %v for numbers, JSON otherwise."""
    if isinstance(value, str):
        return _go_quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_number(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _go_number(value: float | int) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def _invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause("FieldValueInvalid", f"Invalid value: {_go_value(value)}: {detail}", path)


def _type_invalid(path: str, expected: str, actual: str) -> Cause:
    detail = f"{path} in body must be of type {expected}: {_go_quote(actual)}"
    return Cause("FieldValueTypeInvalid", f"Invalid value: {_go_quote(actual)}: {detail}", path)


def _composite_invalid(path: str, detail: str) -> Cause:
    # Upstream reports these without a field; the path is named here so the cause can be found.
    return Cause("FieldValueInvalid", f'Invalid value: "": {_go_quote(path)} {detail}', path)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _validate_value(value: Any, schema: Schema, path: str) -> list[Cause]:
    causes = _check_type(value, schema, path)
    if value is None:
        return causes + _check_enum(value, schema, path)
    causes += _check_composition(value, schema, path)
    if isinstance(value, str):
        causes += _check_string(value, schema, path)
    if _is_number(value):
        causes += _check_number(value, schema, path)
    if isinstance(value, list):
        causes += _check_array(value, schema, path)
    causes += _check_enum(value, schema, path)
    if isinstance(value, dict):
        causes += _check_object(value, schema, path)
    return causes


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _schema_types(schema: Schema) -> list[str]:
    if schema.get("x-kubernetes-int-or-string"):
        return ["integer", "string"]
    declared = schema.get("type")
    if isinstance(declared, list):
        return [str(name) for name in declared]
    return [declared] if isinstance(declared, str) and declared else []


def _json_type(value: Any) -> tuple[str, str]:
    """The JSON type and Go format a decoded value has on the server (ints are int64)."""
    if isinstance(value, bool):
        return "boolean", ""
    if isinstance(value, int) and _INT64_RANGE[0] <= value <= _INT64_RANGE[1]:
        return "integer", "int64"
    if isinstance(value, int | float):
        return "number", "float64"
    if isinstance(value, str):
        return "string", ""
    if isinstance(value, list):
        return "array", ""
    return "object", ""


def _is_json_integer(value: Any) -> bool:
    number = float(value)
    return math.isfinite(number) and abs(number) <= _MAX_JSON_INTEGER and number.is_integer()


def _check_type(value: Any, schema: Schema, path: str) -> list[Cause]:
    types = _schema_types(schema)
    declared_format = str(schema.get("format") or "")
    if not types and not declared_format:
        return []
    if value is None:
        if types and "null" not in types and not schema.get("nullable", False):
            return [_type_invalid(path, ",".join(types), "null")]
        return []
    actual, actual_format = _json_type(value)
    float_as_integer = actual == "number" and "integer" in types and _is_json_integer(value)
    integer_as_number = actual == "integer" and "number" in types
    compatible = actual in types or float_as_integer or integer_as_number
    textual = isinstance(value, str | list)
    if not textual and declared_format and not (compatible or actual_format == declared_format):
        # kube-openapi names the format rather than the type in this case.
        return [_type_invalid(path, declared_format, actual_format)]
    if declared_format and textual and not ({"number", "integer"} & set(types)):
        return []
    if not compatible:
        return [_type_invalid(path, ",".join(types), actual)]
    return []


def _check_string(value: str, schema: Schema, path: str) -> list[Cause]:
    # Like kube-openapi, stop at the first failed string constraint.
    length = len(value)
    if (max_length := schema.get("maxLength")) is not None and length > max_length:
        unit = "byte" if max_length == 1 else "bytes"
        return [Cause("FieldValueTooLong", f"Too long: may not be more than {max_length} {unit}", path)]
    if (min_length := schema.get("minLength")) is not None and length < min_length:
        detail = f"{path} in body should be at least {min_length} chars long"
        return [_invalid(path, value, detail)]
    pattern = schema.get("pattern")
    if pattern and not _matches_pattern(pattern, value):
        return [_invalid(path, value, f"{path} in body should match '{pattern}'")]
    return []


def _matches_pattern(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:
        # An ECMA/RE2 construct Python does not know: do not reject the object for it.
        return True


def _check_number(value: float | int, schema: Schema, path: str) -> list[Cause]:
    causes = []
    if schema.get("format") == "int32" and not _fits_int32(value):
        detail = f"Checked value must be of type integer with format int32 in {path}"
        causes.append(_invalid(path, value, detail))
    multiple_of = schema.get("multipleOf")
    if multiple_of and not _is_multiple(value, multiple_of):
        detail = f"{path} in body should be a multiple of {_go_number(multiple_of)}"
        causes.append(_invalid(path, value, detail))
    causes += _check_bound(value, schema, path, "minimum")
    causes += _check_bound(value, schema, path, "maximum")
    return causes


def _fits_int32(value: float | int) -> bool:
    return not isinstance(value, int) or _INT32_RANGE[0] <= value <= _INT32_RANGE[1]


def _is_multiple(value: float | int, factor: float | int) -> bool:
    quotient = value / factor
    return math.isclose(quotient, round(quotient), abs_tol=1e-9)


def _check_bound(value: float | int, schema: Schema, path: str, keyword: str) -> list[Cause]:
    bound = schema.get(keyword)
    if bound is None:
        return []
    exclusive = bool(schema.get("exclusiveMinimum" if keyword == "minimum" else "exclusiveMaximum"))
    if keyword == "minimum":
        failed = value <= bound if exclusive else value < bound
        relation = "greater than" if exclusive else "greater than or equal to"
    else:
        failed = value >= bound if exclusive else value > bound
        relation = "less than" if exclusive else "less than or equal to"
    if not failed:
        return []
    return [_invalid(path, value, f"{path} in body should be {relation} {_go_number(bound)}")]


def _check_array(value: list[Any], schema: Schema, path: str) -> list[Cause]:
    causes: list[Cause] = []
    items = _items_schema(schema)
    if items is not None:
        for index, item in enumerate(value):
            causes += _validate_value(item, items, _index_path(path, index))
    if (min_items := schema.get("minItems")) is not None and len(value) < min_items:
        detail = f"{path} in body should have at least {min_items} items"
        causes.append(_invalid(path, len(value), detail))
    if (max_items := schema.get("maxItems")) is not None and len(value) > max_items:
        unit = "item" if max_items == 1 else "items"
        message = f"Too many: {len(value)}: must have at most {max_items} {unit}"
        causes.append(Cause("FieldValueTooMany", message, path))
    if schema.get("uniqueItems") and _first_duplicate(value, lambda item: item) is not None:
        causes.append(_invalid(path, "", f"{path} in body shouldn't contain duplicates"))
    return causes + _check_list_type(value, schema, path)


def _check_list_type(value: list[Any], schema: Schema, path: str) -> list[Cause]:
    """x-kubernetes-list-type set and map forbid duplicate items (keys) as the apiserver does."""
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set":
        identity: Callable[[Any], Any] = lambda item: item  # noqa: E731
    elif list_type == "map":
        keys = list(schema.get("x-kubernetes-list-map-keys") or [])
        identity = lambda item: {k: item.get(k) for k in keys} if isinstance(item, dict) else item  # noqa: E731
    else:
        return []
    index = _first_duplicate(value, identity)
    if index is None:
        return []
    duplicate = _go_value(identity(value[index]))
    return [Cause("FieldValueDuplicate", f"Duplicate value: {duplicate}", _index_path(path, index))]


def _first_duplicate(items: list[Any], identity: Callable[[Any], Any]) -> int | None:
    seen: set[str] = set()
    for index, item in enumerate(items):
        marker = json.dumps(identity(item), sort_keys=True)
        if marker in seen:
            return index
        seen.add(marker)
    return None


def _check_enum(value: Any, schema: Schema, path: str) -> list[Cause]:
    allowed = schema.get("enum")
    if not allowed or any(_enum_equal(value, candidate) for candidate in allowed):
        return []
    listed = ", ".join(
        _go_quote(option if isinstance(option, str) else json.dumps(option)) for option in allowed
    )
    message = f"Unsupported value: {_go_value(value)}: supported values: {listed}"
    return [Cause("FieldValueNotSupported", message, path)]


def _enum_equal(value: Any, candidate: Any) -> bool:
    if value is None or candidate is None:
        return False
    if isinstance(value, bool) or isinstance(candidate, bool):
        return type(value) is type(candidate) and value == candidate
    if _is_number(value) and _is_number(candidate):
        return bool(value == candidate)
    return type(value) is type(candidate) and value == candidate


def _check_object(value: dict[str, Any], schema: Schema, path: str) -> list[Cause]:
    causes = _check_property_count(value, schema, path)
    if causes:
        return causes
    properties: Mapping[str, Schema] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    for name, item in value.items():
        if name in properties:
            causes += _validate_value(item, properties[name], _child_path(path, name))
        elif isinstance(additional, Mapping):
            causes += _validate_value(item, additional, _child_path(path, name))
    causes.extend(
        Cause("FieldValueRequired", "Required value", _child_path(path, name))
        for name in schema.get("required") or []
        if name not in value
    )
    if _is_embedded(schema):
        causes += _check_embedded_resource(value, path)
    return causes


def _check_property_count(value: dict[str, Any], schema: Schema, path: str) -> list[Cause]:
    count = len(value)
    if (minimum := schema.get("minProperties")) is not None and count < minimum:
        detail = f"{path} in body should have at least {minimum} properties"
        return [_invalid(path, count, detail)]
    if (maximum := schema.get("maxProperties")) is not None and count > maximum:
        unit = "item" if maximum == 1 else "items"
        return [Cause("FieldValueTooMany", f"Too many: {count}: must have at most {maximum} {unit}", path)]
    return []


def _check_embedded_resource(value: dict[str, Any], path: str) -> list[Cause]:
    causes = []
    for name in ("apiVersion", "kind"):
        field_path = _child_path(path, name)
        if name not in value:
            causes.append(Cause("FieldValueRequired", "Required value: must not be empty", field_path))
        elif not isinstance(value[name], str):
            causes.append(_invalid(field_path, value[name], "must be a string"))
        elif not value[name]:
            causes.append(_invalid(field_path, "", "must not be empty"))
    metadata = value.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        causes.append(_invalid(_child_path(path, "metadata"), metadata, "must be an object"))
    return causes


# --- anyOf, oneOf, allOf, not -------------------------------------------------------------------


def _check_composition(value: Any, schema: Schema, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if any_of := schema.get("anyOf"):
        causes += _check_any_of(value, any_of, path)
    if one_of := schema.get("oneOf"):
        causes += _check_one_of(value, one_of, path)
    if all_of := schema.get("allOf"):
        causes += _check_all_of(value, all_of, path)
    if (negated := schema.get("not")) is not None and not _validate_value(value, negated, path):
        causes.append(_composite_invalid(path, "must not validate the schema (not)"))
    return causes


def _alternatives(value: Any, schemas: list[Schema], path: str) -> Iterator[list[Cause]]:
    for alternative in schemas:
        yield _validate_value(value, alternative, path)


def _check_any_of(value: Any, schemas: list[Schema], path: str) -> list[Cause]:
    failures = []
    for causes in _alternatives(value, schemas, path):
        if not causes:
            return []
        failures.append(causes)
    closest = min(failures, key=len)
    return [_composite_invalid(path, "must validate at least one schema (anyOf)"), *closest]


def _check_one_of(value: Any, schemas: list[Schema], path: str) -> list[Cause]:
    results = list(_alternatives(value, schemas, path))
    valid = sum(not causes for causes in results)
    if valid == 1:
        return []
    if valid == 0:
        closest = min(results, key=len)
        message = "must validate one and only one schema (oneOf). Found none valid"
        return [_composite_invalid(path, message), *closest]
    message = f"must validate one and only one schema (oneOf). Found {valid} valid alternatives"
    return [_composite_invalid(path, message)]


def _check_all_of(value: Any, schemas: list[Schema], path: str) -> list[Cause]:
    results = list(_alternatives(value, schemas, path))
    failed = [cause for causes in results for cause in causes]
    if not failed:
        return []
    suffix = ". None validated" if all(results) else ""
    return [*failed, _composite_invalid(path, f"must validate all the schemas (allOf){suffix}")]
