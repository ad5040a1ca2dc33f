"""CRD schema pruning, defaulting and validation, checked with Istio's real CRDs."""

from __future__ import annotations

import copy
import functools
from importlib import resources
from typing import Any

import pytest
import yaml

from playground.schema import SchemaResult, validate

# Through the installed package, not a path in this repository: the playground is its own distribution.
CRDS = resources.files("playground") / "data" / "istio-crds.yaml"


@functools.cache
def crds() -> dict[str, dict[str, Any]]:
    with CRDS.open() as stream:
        return {doc["spec"]["names"]["kind"]: doc for doc in yaml.safe_load_all(stream) if doc}


def istio_schema(kind: str, version: str = "v1") -> dict[str, Any]:
    versions = crds()[kind]["spec"]["versions"]
    return next(v for v in versions if v["name"] == version)["schema"]["openAPIV3Schema"]


def checked(obj: dict[str, Any], schema: dict[str, Any]) -> SchemaResult:
    """Validates and checks that neither the object nor the schema was changed."""
    obj_before, schema_before = copy.deepcopy(obj), copy.deepcopy(schema)
    result = validate(obj, schema)
    assert obj == obj_before
    assert schema == schema_before
    return result


def causes(result: SchemaResult) -> list[tuple[str, str, str]]:
    return [(cause.reason, cause.field, cause.message) for cause in result.causes]


def gateway() -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "emojivoto-gateway", "namespace": "emojivoto"},
        "spec": {
            "selector": {"istio": "ingressgateway"},
            "servers": [
                {
                    "port": {"number": 80, "name": "http", "protocol": "HTTP"},
                    "hosts": ["emoji-istio.test.net"],
                }
            ],
        },
    }


def virtual_service(**route_extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "web", "namespace": "emojivoto"},
        "spec": {
            "hosts": ["emoji-istio.test.net"],
            "gateways": ["emojivoto-gateway"],
            "http": [
                {
                    "match": [{"uri": {"prefix": "/"}}],
                    "route": [{"destination": {"host": "web-svc", "port": {"number": 80}}}],
                    **route_extra,
                }
            ],
        },
    }


def peer_authentication(mode: str) -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": "emojivoto"},
        "spec": {"mtls": {"mode": mode}},
    }


# --- Istio's CRDs ------------------------------------------------------------------------------

NETWORKING_VERSIONS = ["v1", "v1beta1", "v1alpha3"]


@pytest.mark.parametrize("version", NETWORKING_VERSIONS)
@pytest.mark.parametrize(
    ("kind", "obj"),
    [
        ("Gateway", gateway()),
        ("VirtualService", virtual_service()),
        (
            "VirtualService",
            virtual_service(fault={"abort": {"httpStatus": 500, "percentage": {"value": 50}}}),
        ),
        (
            "VirtualService",
            virtual_service(fault={"delay": {"fixedDelay": "3s", "percentage": {"value": 100}}}),
        ),
    ],
)
def test_seed_istio_objects_are_accepted(kind: str, obj: dict[str, Any], version: str) -> None:
    result = checked(obj, istio_schema(kind, version))
    assert result.causes == []
    assert result.unknown_fields == []
    assert result.pruned == obj


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
@pytest.mark.parametrize("mode", ["STRICT", "PERMISSIVE", "DISABLE", "UNSET"])
def test_peer_authentication_modes_are_accepted(mode: str, version: str) -> None:
    result = checked(peer_authentication(mode), istio_schema("PeerAuthentication", version))
    assert result.causes == []


def test_other_istio_kinds_accept_typical_objects() -> None:
    destination_rule: dict[str, Any] = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "web"},
        "spec": {"host": "web-svc", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]},
    }
    service_entry: dict[str, Any] = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "ext"},
        "spec": {
            "hosts": ["api.example.com"],
            "ports": [{"number": 443, "name": "https", "protocol": "TLS"}],
        },
    }
    authorization_policy: dict[str, Any] = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "deny"},
        "spec": {"action": "DENY", "rules": [{"from": [{"source": {"namespaces": ["x"]}}]}]},
    }
    for obj in (destination_rule, service_entry, authorization_policy):
        result = checked(obj, istio_schema(obj["kind"]))
        assert (result.causes, result.unknown_fields) == ([], [])


def test_abort_http_status_as_a_string_is_a_type_error() -> None:
    obj = virtual_service(fault={"abort": {"httpStatus": "500", "percentage": {"value": 50}}})
    path = "spec.http[0].fault.abort.httpStatus"
    assert causes(checked(obj, istio_schema("VirtualService"))) == [
        (
            "FieldValueTypeInvalid",
            path,
            f'Invalid value: "string": {path} in body must be of type integer: "string"',
        )
    ]


def test_unknown_mtls_mode_is_not_supported() -> None:
    result = checked(peer_authentication("STRICTER"), istio_schema("PeerAuthentication"))
    assert causes(result) == [
        (
            "FieldValueNotSupported",
            "spec.mtls.mode",
            'Unsupported value: "STRICTER": supported values: "UNSET", "DISABLE", "PERMISSIVE", "STRICT"',
        )
    ]


def test_string_match_with_exact_and_prefix_breaks_one_of() -> None:
    obj = virtual_service()
    obj["spec"]["http"][0]["match"][0]["uri"] = {"exact": "/a", "prefix": "/"}
    path = "spec.http[0].match[0].uri"
    assert causes(checked(obj, istio_schema("VirtualService"))) == [
        (
            "FieldValueInvalid",
            path,
            f'Invalid value: "": "{path}" must validate one and only one schema (oneOf). '
            "Found 2 valid alternatives",
        )
    ]


def test_abort_with_two_error_kinds_breaks_one_of() -> None:
    obj = virtual_service(fault={"abort": {"httpStatus": 500, "grpcStatus": "UNAVAILABLE"}})
    result = checked(obj, istio_schema("VirtualService"))
    assert [(c.reason, c.field) for c in result.causes] == [("FieldValueInvalid", "spec.http[0].fault.abort")]


def test_unknown_fields_are_pruned_and_reported() -> None:
    obj = virtual_service(faultx={"abort": {"httpStatus": 500}})
    obj["spec"]["foo"] = "bar"
    result = checked(obj, istio_schema("VirtualService"))
    assert result.causes == []
    assert result.unknown_fields == ["spec.http[0].faultx", "spec.foo"]
    assert result.pruned == virtual_service()


def test_missing_required_field_is_reported() -> None:
    obj = gateway()
    del obj["spec"]["servers"][0]["hosts"]
    assert causes(checked(obj, istio_schema("Gateway"))) == [
        ("FieldValueRequired", "spec.servers[0].hosts", "Required value")
    ]


def test_preserve_unknown_fields_keeps_status_as_is() -> None:
    obj = virtual_service()
    obj["status"] = {"anything": {"goes": [1, 2]}, "observedGeneration": 3}
    result = checked(obj, istio_schema("VirtualService"))
    assert (result.causes, result.unknown_fields) == ([], [])
    assert result.pruned["status"] == obj["status"]


def test_int_or_string_accepts_both_but_nothing_else() -> None:
    schema = istio_schema("VirtualService")
    for generation in (3, "3"):
        obj = virtual_service()
        obj["status"] = {"observedGeneration": generation}
        assert checked(obj, schema).causes == []
    obj = virtual_service()
    obj["status"] = {"observedGeneration": True}
    # The type error, the failed anyOf, and the closest alternative's own error, as upstream.
    assert [(c.reason, c.field) for c in checked(obj, schema).causes] == [
        ("FieldValueTypeInvalid", "status.observedGeneration"),
        ("FieldValueInvalid", "status.observedGeneration"),
        ("FieldValueTypeInvalid", "status.observedGeneration"),
    ]


def test_resource_apiversion_kind_and_metadata_are_neither_pruned_nor_validated() -> None:
    obj = gateway()
    obj["metadata"]["whatever"] = {"x": 1}
    result = checked(obj, istio_schema("Gateway"))
    assert (result.causes, result.unknown_fields) == ([], [])
    assert result.pruned["metadata"]["whatever"] == {"x": 1}


# --- the rules, one schema at a time -----------------------------------------------------------


def obj_with(spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}


def root(spec_schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"spec": spec_schema}}


def only_cause(spec: Any, spec_schema: dict[str, Any]) -> tuple[str, str, str]:
    found = causes(checked(obj_with(spec), root(spec_schema)))
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"type": "string"}, "x"),
        ({"type": "integer"}, 3),
        ({"type": "integer"}, 3.0),  # integral JSON numbers are integers
        ({"type": "number"}, 3),  # an integer is a valid number
        ({"type": "number"}, 2.5),
        ({"type": "boolean"}, False),
        ({"type": "array", "items": {"type": "string"}}, ["a"]),
        ({"type": "object"}, {}),
        ({"type": "string", "nullable": True}, None),
        ({"x-kubernetes-int-or-string": True}, "50%"),
        ({"x-kubernetes-int-or-string": True}, 50),
        ({}, {"anything": "is pruned"}),
    ],
)
def test_values_of_the_declared_type_are_valid(schema: dict[str, Any], value: Any) -> None:
    assert checked(obj_with(value), root(schema)).causes == []


@pytest.mark.parametrize(
    ("schema", "value", "expected", "actual"),
    [
        ({"type": "integer"}, "3", "integer", "string"),
        ({"type": "integer"}, 2.5, "integer", "number"),
        ({"type": "integer"}, True, "integer", "boolean"),
        ({"type": "integer"}, 2**70, "integer", "number"),  # beyond int64 decodes as a float
        ({"type": "string"}, 3, "string", "integer"),
        ({"type": "boolean"}, "true", "boolean", "string"),
        ({"type": "object"}, [], "object", "array"),
        ({"type": "array"}, {}, "array", "object"),
        ({"x-kubernetes-int-or-string": True}, [1], "integer,string", "array"),
        ({"type": "integer", "format": "int32"}, True, "int32", ""),  # kube-openapi names the format
    ],
)
def test_values_of_another_type_are_type_errors(
    schema: dict[str, Any], value: Any, expected: str, actual: str
) -> None:
    assert only_cause(value, schema) == (
        "FieldValueTypeInvalid",
        "spec",
        f'Invalid value: "{actual}": spec in body must be of type {expected}: "{actual}"',
    )


def test_null_in_a_nullable_field_is_kept() -> None:
    schema = root({"type": "object", "properties": {"a": {"type": "string", "nullable": True}}})
    result = checked(obj_with({"a": None}), schema)
    assert (result.causes, result.pruned["spec"]) == ([], {"a": None})


def test_null_in_a_non_nullable_field_is_dropped_like_the_apiserver_does() -> None:
    schema = root({"type": "object", "properties": {"a": {"type": "string"}}})
    result = checked(obj_with({"a": None}), schema)
    assert (result.causes, result.pruned["spec"], result.unknown_fields) == ([], {}, [])


def test_null_array_items_are_type_errors() -> None:
    schema = {"type": "array", "items": {"type": "string"}}
    assert only_cause(["a", None], schema) == (
        "FieldValueTypeInvalid",
        "spec[1]",
        'Invalid value: "null": spec[1] in body must be of type string: "null"',
    )


def test_defaults_fill_missing_and_null_fields() -> None:
    spec_schema = {
        "type": "object",
        "properties": {
            "replicas": {"type": "integer", "default": 1},
            "mode": {"type": "string", "default": "A"},
            "nested": {
                "type": "object",
                "default": {},
                "properties": {"x": {"type": "integer", "default": 7}},
            },
        },
    }
    result = checked(obj_with({"mode": None}), root(spec_schema))
    assert result.causes == []
    assert result.pruned["spec"] == {"replicas": 1, "mode": "A", "nested": {"x": 7}}


@pytest.mark.parametrize(
    ("schema", "value", "message"),
    [
        (
            {"type": "integer", "minimum": 1},
            0,
            "Invalid value: 0: spec in body should be greater than or equal to 1",
        ),
        (
            {"type": "integer", "minimum": 1, "exclusiveMinimum": True},
            1,
            "Invalid value: 1: spec in body should be greater than 1",
        ),
        (
            {"type": "number", "maximum": 100},
            100.5,
            "Invalid value: 100.5: spec in body should be less than or equal to 100",
        ),
        (
            {"type": "integer", "maximum": 100, "exclusiveMaximum": True},
            100,
            "Invalid value: 100: spec in body should be less than 100",
        ),
        ({"type": "integer", "multipleOf": 5}, 7, "Invalid value: 7: spec in body should be a multiple of 5"),
        (
            {"type": "string", "minLength": 3},
            "ab",
            'Invalid value: "ab": spec in body should be at least 3 chars long',
        ),
        (
            {"type": "string", "pattern": "^[a-z]+$"},
            "A1",
            "Invalid value: \"A1\": spec in body should match '^[a-z]+$'",
        ),
        (
            {"type": "array", "minItems": 2},
            ["a"],
            "Invalid value: 1: spec in body should have at least 2 items",
        ),
        (
            {"type": "array", "uniqueItems": True},
            ["a", "a"],
            'Invalid value: "": spec in body shouldn\'t contain duplicates',
        ),
        (
            {"type": "integer", "format": "int32"},
            2**31,
            "Invalid value: 2147483648: Checked value must be of type integer with format int32 in spec",
        ),
        (
            {"type": "object", "minProperties": 1},
            {},
            "Invalid value: 0: spec in body should have at least 1 properties",
        ),
    ],
)
def test_range_length_and_pattern_violations_are_invalid(
    schema: dict[str, Any], value: Any, message: str
) -> None:
    assert only_cause(value, schema) == ("FieldValueInvalid", "spec", message)


def test_int32_bounds_are_accepted() -> None:
    schema = root({"type": "integer", "format": "int32"})
    for value in (2**31 - 1, -(2**31)):
        assert checked(obj_with(value), schema).causes == []


def test_too_long_strings_and_too_many_items_have_their_own_reasons() -> None:
    assert only_cause("abcd", {"type": "string", "maxLength": 3}) == (
        "FieldValueTooLong",
        "spec",
        "Too long: may not be more than 3 bytes",
    )
    assert only_cause([1, 2], {"type": "array", "maxItems": 1}) == (
        "FieldValueTooMany",
        "spec",
        "Too many: 2: must have at most 1 item",
    )


@pytest.mark.parametrize(
    ("enum", "value", "message"),
    [
        (["A", "B"], "C", 'Unsupported value: "C": supported values: "A", "B"'),
        ([1, 2], 3, 'Unsupported value: 3: supported values: "1", "2"'),
        (["1"], 1, 'Unsupported value: 1: supported values: "1"'),
    ],
)
def test_enum_violations_are_not_supported(enum: list[Any], value: Any, message: str) -> None:
    assert only_cause(value, {"enum": enum}) == ("FieldValueNotSupported", "spec", message)


def test_enum_compares_numbers_by_value() -> None:
    assert checked(obj_with(2.0), root({"type": "number", "enum": [1, 2]})).causes == []


def test_additional_properties_schema_validates_map_values_and_prunes_nothing() -> None:
    spec_schema = {"type": "object", "additionalProperties": {"type": "string"}}
    result = checked(obj_with({"a": "x", "b": 2}), root(spec_schema))
    assert result.unknown_fields == []
    assert [(c.reason, c.field) for c in result.causes] == [("FieldValueTypeInvalid", "spec.b")]


def test_pruning_descends_into_additional_properties_and_arrays() -> None:
    spec_schema = {
        "type": "object",
        "properties": {
            "byName": {
                "type": "object",
                "additionalProperties": {"type": "object", "properties": {"keep": {"type": "string"}}},
            },
            "list": {
                "type": "array",
                "items": {"type": "object", "properties": {"keep": {"type": "string"}}},
            },
        },
    }
    spec = {"byName": {"a": {"keep": "1", "drop": 2}}, "list": [{"keep": "x"}, {"drop": 1}]}
    result = checked(obj_with(spec), root(spec_schema))
    assert result.unknown_fields == ["spec.byName.a.drop", "spec.list[1].drop"]
    assert result.pruned["spec"] == {"byName": {"a": {"keep": "1"}}, "list": [{"keep": "x"}, {}]}


def test_preserve_unknown_fields_still_prunes_declared_subtrees() -> None:
    spec_schema = {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}},
    }
    result = checked(obj_with({"free": {"x": 1}, "known": {"a": "1", "b": 2}}), root(spec_schema))
    assert result.unknown_fields == ["spec.known.b"]
    assert result.pruned["spec"] == {"free": {"x": 1}, "known": {"a": "1"}}


def test_embedded_resources_keep_their_type_and_metadata() -> None:
    spec_schema = {
        "type": "object",
        "properties": {
            "template": {
                "type": "object",
                "x-kubernetes-embedded-resource": True,
                "properties": {"spec": {"type": "object"}},
            }
        },
    }
    template = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}, "extra": 1}
    result = checked(obj_with({"template": template}), root(spec_schema))
    assert result.unknown_fields == ["spec.template.extra"]
    assert result.pruned["spec"]["template"] == {k: v for k, v in template.items() if k != "extra"}
    assert result.causes == []


def test_embedded_resources_need_api_version_and_kind() -> None:
    spec_schema = {
        "type": "object",
        "x-kubernetes-embedded-resource": True,
        "x-kubernetes-preserve-unknown-fields": True,
    }
    result = checked(obj_with({"kind": ""}), root(spec_schema))
    assert causes(result) == [
        ("FieldValueRequired", "spec.apiVersion", "Required value: must not be empty"),
        ("FieldValueInvalid", "spec.kind", 'Invalid value: "": must not be empty'),
    ]


@pytest.mark.parametrize(
    ("list_type", "value", "field", "message"),
    [
        ("set", ["a", "b", "a"], "spec[2]", 'Duplicate value: "a"'),
        ("map", [{"name": "a", "v": 1}, {"name": "a", "v": 2}], "spec[1]", 'Duplicate value: {"name":"a"}'),
    ],
)
def test_list_types_forbid_duplicates(list_type: str, value: list[Any], field: str, message: str) -> None:
    item = {"type": "object", "properties": {"name": {"type": "string"}, "v": {"type": "integer"}}}
    schema = {
        "type": "array",
        "items": item if list_type == "map" else {"type": "string"},
        "x-kubernetes-list-type": list_type,
        "x-kubernetes-list-map-keys": ["name"],
    }
    assert only_cause(value, schema) == ("FieldValueDuplicate", field, message)


# --- anyOf, oneOf, allOf, not ------------------------------------------------------------------

AT_MOST_ONE = {
    "type": "object",
    "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
    "oneOf": [
        {"not": {"anyOf": [{"required": ["a"]}, {"required": ["b"]}]}},
        {"required": ["a"]},
        {"required": ["b"]},
    ],
}


@pytest.mark.parametrize("spec", [{}, {"a": "x"}, {"b": "y"}])
def test_at_most_one_of_accepts_zero_or_one(spec: dict[str, Any]) -> None:
    assert checked(obj_with(spec), root(AT_MOST_ONE)).causes == []


def test_at_most_one_of_rejects_two() -> None:
    assert only_cause({"a": "x", "b": "y"}, AT_MOST_ONE) == (
        "FieldValueInvalid",
        "spec",
        'Invalid value: "": "spec" must validate one and only one schema (oneOf). Found 2 valid alternatives',
    )


def test_one_of_with_no_valid_alternative_reports_the_closest_failure() -> None:
    schema = {"oneOf": [{"required": ["a"]}, {"required": ["b"]}]}
    assert causes(checked(obj_with({}), root(schema))) == [
        (
            "FieldValueInvalid",
            "spec",
            'Invalid value: "": "spec" must validate one and only one schema (oneOf). Found none valid',
        ),
        ("FieldValueRequired", "spec.a", "Required value"),
    ]


def test_any_of_needs_one_match() -> None:
    schema = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert checked(obj_with("x"), root(schema)).causes == []
    assert causes(checked(obj_with(True), root(schema)))[0] == (
        "FieldValueInvalid",
        "spec",
        'Invalid value: "": "spec" must validate at least one schema (anyOf)',
    )


def test_all_of_needs_every_match() -> None:
    schema = {"allOf": [{"minimum": 1}, {"maximum": 5}]}
    assert checked(obj_with(3), root(schema)).causes == []
    assert causes(checked(obj_with(9), root(schema))) == [
        ("FieldValueInvalid", "spec", "Invalid value: 9: spec in body should be less than or equal to 5"),
        ("FieldValueInvalid", "spec", 'Invalid value: "": "spec" must validate all the schemas (allOf)'),
    ]


def test_not_rejects_what_its_schema_accepts() -> None:
    schema = {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "not": {"required": ["forbidden"]},
    }
    assert checked(obj_with({}), root(schema)).causes == []
    assert only_cause({"forbidden": 1}, schema) == (
        "FieldValueInvalid",
        "spec",
        'Invalid value: "": "spec" must not validate the schema (not)',
    )


def test_cel_rules_are_skipped() -> None:
    schema = {"type": "string", "x-kubernetes-validations": [{"rule": "self == 'never'", "message": "no"}]}
    assert checked(obj_with("anything"), root(schema)).causes == []
