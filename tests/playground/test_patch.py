"""Merge patch, JSON patch and strategic merge patch, as kube-apiserver applies them."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from playground.errors import ApiError
from playground.patch import apply_json_patch, apply_merge_patch, apply_strategic_merge_patch

GENERIC_422 = "the server rejected our request due to an error in our request"


def pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-1",
            "labels": {"app": "web", "tier": "frontend"},
            "finalizers": ["a.io/one", "a.io/two"],
            "ownerReferences": [{"uid": "u1", "kind": "ReplicaSet", "name": "web"}],
        },
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "web:1",
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    "ports": [{"containerPort": 80, "name": "http"}],
                    "volumeMounts": [{"mountPath": "/data", "name": "data"}],
                    "args": ["--a", "--b"],
                },
                {"name": "proxy", "image": "envoy:1"},
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "tolerations": [{"key": "a"}, {"key": "b"}],
        },
        "status": {"conditions": [{"type": "Ready", "status": "False"}]},
    }


def applied(
    apply: Callable[..., dict[str, Any]], target: dict[str, Any], patch: Any, *extra: Any
) -> dict[str, Any]:
    """Applies a patch and checks that neither input was touched."""
    target_before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)
    result = apply(target, patch, *extra)
    assert target == target_before
    assert patch == patch_before
    return result


def rejected(apply: Callable[..., Any], target: dict[str, Any], patch: Any, *extra: Any) -> ApiError:
    target_before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)
    with pytest.raises(ApiError) as caught:
        apply(target, patch, *extra)
    assert target == target_before
    assert patch == patch_before
    return caught.value


def smp(target: dict[str, Any], patch: Any, kind: str = "Pod") -> dict[str, Any]:
    return applied(apply_strategic_merge_patch, target, patch, kind)


def container(obj: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in obj["spec"]["containers"] if c["name"] == name)


def names(items: list[dict[str, Any]], key: str = "name") -> list[Any]:
    return [item[key] for item in items]


# --- JSON merge patch --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
        ({"a": "b"}, {}, {"a": "b"}),
        ({"a": {"x": 1}}, {"a": [1, None]}, {"a": [1, None]}),
    ],
)
def test_merge_patch_follows_rfc_7386(
    target: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert applied(apply_merge_patch, target, patch) == expected


def test_merge_patch_replaces_lists_and_keeps_key_order() -> None:
    result = applied(apply_merge_patch, pod(), {"metadata": {"finalizers": ["x"], "labels": {"app": None}}})
    assert result["metadata"]["finalizers"] == ["x"]
    assert result["metadata"]["labels"] == {"tier": "frontend"}
    assert list(result) == ["apiVersion", "kind", "metadata", "spec", "status"]


def test_merge_patch_drops_nulls_inside_new_objects_in_lists() -> None:
    assert applied(apply_merge_patch, {}, {"a": [{"b": None, "c": 1}]}) == {"a": [{"c": 1}]}


def test_merge_patch_result_shares_nothing_with_inputs() -> None:
    target = {"keep": {"deep": [1]}}
    patch = {"new": {"deep": [2]}}
    result = apply_merge_patch(target, patch)
    result["keep"]["deep"].append(9)
    result["new"]["deep"].append(9)
    assert target == {"keep": {"deep": [1]}}
    assert patch == {"new": {"deep": [2]}}


@pytest.mark.parametrize("patch", [None, [], ["a"], "text", 3])
def test_merge_patch_must_be_an_object(patch: Any) -> None:
    error = rejected(apply_merge_patch, pod(), patch)
    assert (error.code, error.reason, error.message) == (400, "BadRequest", "Invalid JSON Patch")


# --- JSON patch --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operations", "check"),
    [
        ([{"op": "add", "path": "/metadata/labels/x", "value": "y"}], ("metadata", "labels", "x")),
        (
            [{"op": "replace", "path": "/spec/containers/0/image", "value": "web:2"}],
            ("spec", "containers", 0, "image"),
        ),
        (
            [{"op": "copy", "from": "/metadata/name", "path": "/metadata/labels/name"}],
            ("metadata", "labels", "name"),
        ),
        (
            [{"op": "move", "from": "/metadata/name", "path": "/metadata/labels/moved"}],
            ("metadata", "labels", "moved"),
        ),
    ],
)
def test_json_patch_operations_set_values(operations: list[dict[str, Any]], check: tuple[Any, ...]) -> None:
    result = applied(apply_json_patch, pod(), operations)
    value: Any = result
    for step in check:
        value = value[step]
    assert value == operations[0].get("value", "web-1")


def test_json_patch_move_removes_the_source() -> None:
    result = applied(
        apply_json_patch, pod(), [{"op": "move", "from": "/metadata/name", "path": "/spec/name"}]
    )
    assert "name" not in result["metadata"]
    assert result["spec"]["name"] == "web-1"


def test_json_patch_remove_from_object_and_array() -> None:
    result = applied(
        apply_json_patch,
        pod(),
        [
            {"op": "remove", "path": "/metadata/labels/tier"},
            {"op": "remove", "path": "/spec/containers/0"},
        ],
    )
    assert result["metadata"]["labels"] == {"app": "web"}
    assert names(result["spec"]["containers"]) == ["proxy"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/spec/tolerations/-", ["a", "b", "new"]),
        ("/spec/tolerations/0", ["new", "a", "b"]),
        ("/spec/tolerations/1", ["a", "new", "b"]),
        ("/spec/tolerations/2", ["a", "b", "new"]),  # index == length appends
    ],
)
def test_json_patch_add_inserts_into_arrays(path: str, expected: list[str]) -> None:
    result = applied(apply_json_patch, pod(), [{"op": "add", "path": path, "value": {"key": "new"}}])
    assert names(result["spec"]["tolerations"], "key") == expected


def test_json_patch_pointer_escapes() -> None:
    target = {"metadata": {"annotations": {"a/b": "1", "m~n": "2"}}}
    result = applied(
        apply_json_patch,
        target,
        [
            {"op": "replace", "path": "/metadata/annotations/a~1b", "value": "x"},
            {"op": "test", "path": "/metadata/annotations/m~0n", "value": "2"},
            {"op": "add", "path": "/metadata/annotations/c~1d~0e", "value": "y"},
        ],
    )
    assert result["metadata"]["annotations"] == {"a/b": "x", "m~n": "2", "c/d~e": "y"}


@pytest.mark.parametrize(
    ("value", "passes"),
    [({"app": "web", "tier": "frontend"}, True), ({"app": "web"}, False), ("web", False)],
)
def test_json_patch_test_compares_json_values(value: Any, passes: bool) -> None:
    operations = [{"op": "test", "path": "/metadata/labels", "value": value}]
    if passes:
        assert applied(apply_json_patch, pod(), operations) == pod()
    else:
        assert rejected(apply_json_patch, pod(), operations).code == 422


def test_json_patch_test_treats_numbers_by_value_but_not_booleans() -> None:
    target = {"n": 1, "b": True}
    assert applied(apply_json_patch, target, [{"op": "test", "path": "/n", "value": 1.0}]) == target
    error = rejected(apply_json_patch, target, [{"op": "test", "path": "/b", "value": 1}])
    assert error.code == 422


def test_json_patch_is_all_or_nothing() -> None:
    target = pod()
    rejected(
        apply_json_patch,
        target,
        [
            {"op": "add", "path": "/metadata/labels/x", "value": "y"},
            {"op": "test", "path": "/metadata/name", "value": "other"},
        ],
    )
    assert "x" not in target["metadata"]["labels"]


def test_json_patch_null_is_an_empty_patch() -> None:
    assert applied(apply_json_patch, pod(), None) == pod()


@pytest.mark.parametrize(
    ("operations", "detail", "field"),
    [
        (
            [{"op": "test", "path": "/metadata/name", "value": "x"}],
            "testing value /metadata/name failed: test failed",
            "/metadata/name",
        ),
        (
            [{"op": "add", "path": "/nope/x", "value": 1}],
            'add operation does not apply: doc is missing path: "/nope/x": missing value',
            "/nope/x",
        ),
        (
            [{"op": "remove", "path": "/metadata/nope"}],
            "error in remove for path: '/metadata/nope': Unable to remove nonexistent key: nope: "
            "missing value",
            "/metadata/nope",
        ),
        (
            [{"op": "replace", "path": "/metadata/nope", "value": 1}],
            "replace operation does not apply: doc is missing key: /metadata/nope: missing value",
            "/metadata/nope",
        ),
        (
            [{"op": "remove", "path": "/spec/containers/2"}],
            "error in remove for path: '/spec/containers/2': Unable to access invalid index: 2: "
            "invalid index referenced",
            "/spec/containers/2",
        ),
        (
            [{"op": "add", "path": "/spec/containers/3", "value": {}}],
            "error in add for path: '/spec/containers/3': Unable to access invalid index: 3: "
            "invalid index referenced",
            "/spec/containers/3",
        ),
        (
            [{"op": "add", "path": "/spec/containers/x", "value": {}}],
            "error in add for path: '/spec/containers/x': value was not a proper array index: 'x'",
            "/spec/containers/x",
        ),
        (
            [{"op": "move", "from": "/nope", "path": "/x"}],
            "move operation does not apply: doc is missing from path: /nope: missing value",
            "/x",
        ),
        (
            [{"op": "copy", "from": "/nope", "path": "/x"}],
            "copy operation does not apply: doc is missing from path: /nope: missing value",
            "/x",
        ),
        (
            [{"op": "move", "from": "/metadata", "path": "/metadata/labels/m"}],
            "move operation does not apply: /metadata cannot be moved into its own child /metadata/labels/m",
            "/metadata/labels/m",
        ),
        (
            [{"op": "add", "path": "/metadata/name/x", "value": 1}],
            'add operation does not apply: doc is missing path: "/metadata/name/x": missing value',
            "/metadata/name/x",
        ),
        (
            [{"op": "replace", "path": "", "value": {}}],
            'replace operation does not apply: doc is missing path: "": missing value',
            "",
        ),
    ],
)
def test_json_patch_operations_that_do_not_apply_are_422(
    operations: list[dict[str, Any]], detail: str, field: str
) -> None:
    error = rejected(apply_json_patch, pod(), operations)
    assert (error.code, error.reason, error.message) == (422, "Invalid", GENERIC_422)
    assert [(c.reason, c.message, c.field) for c in error.causes] == [("FieldValueInvalid", detail, field)]


@pytest.mark.parametrize(
    ("operations", "message"),
    [
        ({"op": "add"}, "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
        ("[]", "json: cannot unmarshal string into Go value of type jsonpatch.Patch"),
        (["add"], "json: cannot unmarshal string into Go value of type jsonpatch.Operation"),
        ([{"path": "/a", "value": 1}], "Unexpected kind: unknown"),
        ([{"op": 5, "path": "/a"}], "Unexpected kind: unknown"),
        ([{"op": "frob", "path": "/a"}], "Unexpected kind: frob"),
        ([{"op": "add", "value": 1}], "add operation failed to decode path: missing value"),
        ([{"op": "remove", "path": 3}], "remove operation failed to decode path: missing value"),
        ([{"op": "add", "path": "/a"}], "add operation, missing value field: missing value"),
        ([{"op": "test", "path": "/a"}], "test operation, missing value field: missing value"),
        ([{"op": "move", "path": "/a"}], "move operation failed to decode from: missing value"),
        (
            [{"op": "add", "path": "a", "value": 1}],
            'invalid JSON pointer "a": it must be empty or start with "/"',
        ),
        (
            [{"op": "remove", "path": "/a~2b"}],
            'invalid JSON pointer "/a~2b": "~" must be followed by 0 or 1',
        ),
        (
            [{"op": "copy", "from": "x", "path": "/a"}],
            'invalid JSON pointer "x": it must be empty or start with "/"',
        ),
        (
            # A malformed operation anywhere rejects the patch before anything is applied.
            [{"op": "test", "path": "/nope", "value": 1}, {"op": "frob"}],
            "Unexpected kind: frob",
        ),
    ],
)
def test_malformed_json_patch_documents_are_400(operations: Any, message: str) -> None:
    error = rejected(apply_json_patch, pod(), operations)
    assert (error.code, error.reason, error.message) == (400, "BadRequest", message)


# --- strategic merge patch: maps, scalars, atomic lists ---------------------------------------


def test_smp_merges_maps_and_deletes_with_null() -> None:
    result = smp(pod(), {"metadata": {"labels": {"tier": None, "new": "x"}, "annotations": {"a": "b"}}})
    assert result["metadata"]["labels"] == {"app": "web", "new": "x"}
    assert result["metadata"]["annotations"] == {"a": "b"}


def test_smp_null_for_a_missing_key_is_ignored() -> None:
    result = smp(pod(), {"metadata": {"annotations": None}, "spec": {"nope": {"deep": None}}})
    assert "annotations" not in result["metadata"]
    assert result["spec"]["nope"] == {}


@pytest.mark.parametrize(
    ("kind", "target", "patch", "expected"),
    [
        # No patch strategy on tolerations or args: the patch's list wins.
        (
            "Pod",
            {"spec": {"tolerations": [{"key": "a"}]}},
            {"spec": {"tolerations": [{"key": "b"}]}},
            {"spec": {"tolerations": [{"key": "b"}]}},
        ),
        (
            "Pod",
            {"spec": {"containers": [{"name": "a", "args": ["-x", "-y"]}]}},
            {"spec": {"containers": [{"name": "a", "args": ["-z"]}]}},
            {"spec": {"containers": [{"name": "a", "args": ["-z"]}]}},
        ),
        # Containers only merge by name where a pod spec lives.
        (
            "ConfigMap",
            {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}},
            {"spec": {"containers": [{"name": "b", "image": "x"}]}},
            {"spec": {"containers": [{"name": "b", "image": "x"}]}},
        ),
        (
            "Deployment",
            {"spec": {"containers": [{"name": "a"}]}},
            {"spec": {"containers": [{"name": "b"}]}},
            {"spec": {"containers": [{"name": "b"}]}},
        ),
    ],
)
def test_smp_lists_without_strategy_are_replaced(
    kind: str, target: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert smp(target, patch, kind) == expected


def test_smp_type_change_replaces_the_value() -> None:
    assert smp({"a": {"b": 1}}, {"a": ["x"]}, "ConfigMap") == {"a": ["x"]}
    assert smp({"a": "text"}, {"a": {"b": None, "c": 1}}, "ConfigMap") == {"a": {"c": 1}}


def test_smp_unknown_kind_still_merges_object_meta() -> None:
    target = {"metadata": {"finalizers": ["a"]}, "data": {"x": "1"}}
    result = smp(target, {"metadata": {"finalizers": ["b"]}, "data": {"y": "2"}}, "Widget")
    assert result == {"metadata": {"finalizers": ["b", "a"]}, "data": {"x": "1", "y": "2"}}


# --- strategic merge patch: lists merged by key ------------------------------------------------


def test_smp_merges_containers_by_name() -> None:
    result = smp(pod(), {"spec": {"containers": [{"name": "proxy", "image": "envoy:2"}]}})
    assert container(result, "proxy")["image"] == "envoy:2"
    assert container(result, "app") == pod()["spec"]["containers"][0]


def test_smp_new_keyed_items_come_before_the_untouched_ones() -> None:
    # Upstream interleaves by live position; items new to the list have none, so they lead.
    result = smp(pod(), {"spec": {"containers": [{"name": "sidecar", "image": "s:1"}]}})
    assert names(result["spec"]["containers"]) == ["sidecar", "app", "proxy"]


@pytest.mark.parametrize(
    ("field", "key", "item"),
    [
        ("env", "name", {"name": "A", "value": "changed"}),
        ("ports", "containerPort", {"containerPort": 80, "protocol": "TCP"}),
        ("volumeMounts", "mountPath", {"mountPath": "/data", "readOnly": True}),
    ],
)
def test_smp_merges_container_lists_by_their_keys(field: str, key: str, item: dict[str, Any]) -> None:
    patch = {"spec": {"containers": [{"name": "app", field: [item]}]}}
    merged = container(smp(pod(), patch), "app")[field]
    original = container(pod(), "app")[field]
    assert len(merged) == len(original)
    match = next(entry for entry in merged if entry[key] == item[key])
    assert match == {**next(e for e in original if e[key] == item[key]), **item}


@pytest.mark.parametrize(
    ("kind", "prefix"),
    [
        ("Deployment", ("spec", "template", "spec")),
        ("ReplicaSet", ("spec", "template", "spec")),
        ("Job", ("spec", "template", "spec")),
        ("DaemonSet", ("spec", "template", "spec")),
        ("StatefulSet", ("spec", "template", "spec")),
        ("CronJob", ("spec", "jobTemplate", "spec", "template", "spec")),
    ],
)
def test_smp_merges_pod_templates_of_workloads(kind: str, prefix: tuple[str, ...]) -> None:
    def nest(leaf: dict[str, Any]) -> dict[str, Any]:
        for step in reversed(prefix):
            leaf = {step: leaf}
        return leaf

    target = nest({"containers": [{"name": "app", "image": "a:1"}, {"name": "b", "image": "b:1"}]})
    result: Any = smp(target, nest({"containers": [{"name": "app", "image": "a:2"}]}), kind)
    for step in prefix:
        result = result[step]
    assert result["containers"] == [{"name": "app", "image": "a:2"}, {"name": "b", "image": "b:1"}]


@pytest.mark.parametrize(
    ("kind", "path", "key"),
    [
        ("Pod", ("spec", "volumes"), "name"),
        ("Pod", ("spec", "imagePullSecrets"), "name"),
        ("Pod", ("spec", "hostAliases"), "ip"),
        ("Pod", ("spec", "initContainers"), "name"),
        ("Pod", ("spec", "ephemeralContainers"), "name"),
        ("Pod", ("status", "conditions"), "type"),
        ("Deployment", ("status", "conditions"), "type"),
        ("ReplicaSet", ("status", "conditions"), "type"),
        ("Job", ("status", "conditions"), "type"),
        ("Service", ("spec", "ports"), "port"),
        ("Pod", ("metadata", "ownerReferences"), "uid"),
    ],
)
def test_smp_keyed_lists_from_the_strategy_table(kind: str, path: tuple[str, str], key: str) -> None:
    target = {path[0]: {path[1]: [{key: "k1", "x": 1}, {key: "k2", "x": 2}]}}
    result = smp(target, {path[0]: {path[1]: [{key: "k2", "y": 3}]}}, kind)
    assert result[path[0]][path[1]] == [{key: "k1", "x": 1}, {key: "k2", "x": 2, "y": 3}]


def test_smp_env_from_is_atomic() -> None:
    target = {"spec": {"containers": [{"name": "a", "envFrom": [{"prefix": "A"}, {"prefix": "B"}]}]}}
    result = smp(target, {"spec": {"containers": [{"name": "a", "envFrom": [{"prefix": "C"}]}]}})
    assert result["spec"]["containers"][0]["envFrom"] == [{"prefix": "C"}]


def test_smp_delete_directive_removes_the_item_with_that_key() -> None:
    patch = {"spec": {"containers": [{"name": "proxy", "$patch": "delete"}]}}
    assert names(smp(pod(), patch)["spec"]["containers"]) == ["app"]


def test_smp_delete_directive_for_a_missing_item_is_a_no_op() -> None:
    patch = {"spec": {"containers": [{"name": "ghost", "$patch": "delete"}]}}
    assert smp(pod(), patch) == pod()


def test_smp_replace_directive_in_a_list_replaces_the_whole_list() -> None:
    patch = {"spec": {"containers": [{"name": "only", "image": "o:1"}, {"$patch": "replace"}]}}
    assert smp(pod(), patch)["spec"]["containers"] == [{"name": "only", "image": "o:1"}]


def test_smp_replace_directive_in_a_map_replaces_the_map() -> None:
    patch = {"metadata": {"labels": {"$patch": "replace", "only": "x"}}}
    assert smp(pod(), patch)["metadata"]["labels"] == {"only": "x"}


def test_smp_delete_directive_in_a_map_empties_it() -> None:
    patch = {"metadata": {"labels": {"$patch": "delete"}}}
    assert smp(pod(), patch)["metadata"]["labels"] == {}


def test_smp_merge_directive_in_a_map_is_the_default_merge() -> None:
    patch = {"metadata": {"labels": {"$patch": "merge", "new": "x"}}}
    assert smp(pod(), patch)["metadata"]["labels"] == {"app": "web", "tier": "frontend", "new": "x"}


def test_smp_directives_in_new_values_do_not_leak_into_the_object() -> None:
    patch = {
        "spec": {
            "initContainers": [{"name": "init", "env": [{"name": "X", "$patch": "delete"}]}],
            "nodeSelector": {"$patch": "replace", "disk": "ssd", "gone": None},
        }
    }
    result = smp(pod(), patch)
    assert result["spec"]["initContainers"] == [{"name": "init", "env": []}]
    assert result["spec"]["nodeSelector"] == {"disk": "ssd"}


# --- strategic merge patch: primitive lists and directives ------------------------------------


def test_smp_finalizers_merge_as_a_set() -> None:
    result = smp(pod(), {"metadata": {"finalizers": ["a.io/two", "a.io/three"]}})
    assert sorted(result["metadata"]["finalizers"]) == ["a.io/one", "a.io/three", "a.io/two"]
    assert len(result["metadata"]["finalizers"]) == 3


def test_smp_delete_from_primitive_list() -> None:
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.io/one", "a.io/nope"]}}
    assert smp(pod(), patch)["metadata"]["finalizers"] == ["a.io/two"]


def test_smp_delete_from_primitive_list_of_a_missing_field_is_a_no_op() -> None:
    patch = {"metadata": {"$deleteFromPrimitiveList/other": ["x"]}}
    assert smp(pod(), patch) == pod()


def test_smp_set_element_order_reorders_keyed_lists() -> None:
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "proxy"}, {"name": "app"}],
            "containers": [{"name": "app", "image": "web:2"}],
        }
    }
    result = smp(pod(), patch)
    assert names(result["spec"]["containers"]) == ["proxy", "app"]
    assert container(result, "app")["image"] == "web:2"


def test_smp_set_element_order_leaves_unlisted_items_in_live_order() -> None:
    target = {"spec": {"containers": [{"name": n} for n in ("a", "x", "b", "y")]}}
    patch = {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}
    result = smp(target, patch)
    # Unlisted items interleave by live position: x came before b and y after it.
    assert names(result["spec"]["containers"]) == ["x", "b", "a", "y"]


def test_smp_set_element_order_for_a_primitive_list() -> None:
    patch = {"metadata": {"$setElementOrder/finalizers": ["a.io/two", "a.io/one"]}}
    assert smp(pod(), patch)["metadata"]["finalizers"] == ["a.io/two", "a.io/one"]


def test_smp_set_element_order_with_a_new_list() -> None:
    patch = {
        "spec": {
            "$setElementOrder/initContainers": [{"name": "b"}, {"name": "a"}],
            "initContainers": [{"name": "b"}, {"name": "a"}],
        }
    }
    assert names(smp(pod(), patch)["spec"]["initContainers"]) == ["b", "a"]


def test_smp_retain_keys_clears_the_other_keys() -> None:
    target = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert smp(target, patch, "Deployment") == {"spec": {"strategy": {"type": "Recreate"}}}


def test_smp_ref_and_schema_are_ordinary_fields_of_crd_schemas() -> None:
    target = {"spec": {"schema": {"$schema": "a"}}}
    patch = {"spec": {"schema": {"$ref": "#/x", "$schema": "b"}}}
    expected = {"spec": {"schema": {"$schema": "b", "$ref": "#/x"}}}
    assert smp(target, patch, "CustomResourceDefinition") == expected


def test_smp_result_shares_nothing_with_inputs() -> None:
    target, patch = pod(), {"spec": {"initContainers": [{"name": "i", "args": ["x"]}]}}
    result = apply_strategic_merge_patch(target, patch, "Pod")
    result["spec"]["initContainers"][0]["args"].append("y")
    result["spec"]["containers"][0]["env"].clear()
    assert patch == {"spec": {"initContainers": [{"name": "i", "args": ["x"]}]}}
    assert target == pod()


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ([], "invalid JSON document"),
        ({"spec": {"$foo": 1}}, "unknown strategic merge patch directive: $foo"),
        (
            {"metadata": {"labels": {"$patch": "frob"}}},
            "unknown patch type: frob in map: map[$patch:frob]",
        ),
        (
            {"spec": {"containers": [{"name": "a", "$patch": "frob"}]}},
            "unknown patch type: frob in map: map[$patch:frob name:a]",
        ),
        (
            {"spec": {"containers": [{"name": "a", "$patch": "merge"}]}},
            "merging lists cannot yet be specified in the patch",
        ),
        (
            {"spec": {"containers": [{"image": "x"}]}},
            "map: map[image:x] does not contain declared merge key: name",
        ),
        (
            {"spec": {"containers": [{"$patch": "delete"}]}},
            "map: map[$patch:delete] does not contain declared merge key: name",
        ),
        (
            {"spec": {"containers": ["app"]}},
            "list element types are not identical: [map[args:[--a --b] env:[map[name:A value:1] "
            "map[name:B value:2]] image:web:1 name:app ports:[map[containerPort:80 name:http]] "
            "volumeMounts:[map[mountPath:/data name:data]]] map[image:envoy:1 name:proxy] app]",
        ),
        (
            {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}},
            "invalid patch format of primitive list",
        ),
        ({"metadata": {"$deleteFromPrimitiveList": ["a"]}}, "invalid patch format of primitive list"),
        ({"metadata": {"$setElementOrder": []}}, "invalid patch format of setElementOrder list"),
        (
            {"metadata": {"$setElementOrder/finalizers": "a"}},
            "invalid patch format of setElementOrder list",
        ),
        (
            {
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}],
                    "containers": [{"name": "proxy"}],
                }
            },
            "The order in patch list:\n[map[name:proxy]]\n doesn't match $setElementOrder list:\n"
            "[map[name:app]]\n",
        ),
        ({"spec": {"$retainKeys": "type"}}, "invalid patch format of retainKeys"),
        ({"spec": {"$retainKeys": ["volumes"], "containers": []}}, "invalid patch format of retainKeys"),
        (
            {"metadata": {"finalizers": [{"a": 1}]}},
            "list element types are not identical: [a.io/one a.io/two map[a:1]]",
        ),
    ],
)
def test_smp_bad_patches_are_400(patch: Any, message: str) -> None:
    error = rejected(apply_strategic_merge_patch, pod(), patch, "Pod")
    assert (error.code, error.reason, error.message) == (400, "BadRequest", message)


def test_smp_lists_of_lists_are_422() -> None:
    error = rejected(apply_strategic_merge_patch, pod(), {"metadata": {"finalizers": [["a"]]}}, "Pod")
    assert (error.code, error.reason, error.message) == (422, "Invalid", GENERIC_422)
    assert error.causes[0].message == "lists of lists are not supported"


def test_smp_set_merged_list_of_maps_has_no_merge_key() -> None:
    target: dict[str, Any] = {"metadata": {"finalizers": []}}
    error = rejected(apply_strategic_merge_patch, target, {"metadata": {"finalizers": [{"a": 1}]}}, "Pod")
    assert (error.code, error.message) == (400, "cannot merge lists without merge key for type map")
