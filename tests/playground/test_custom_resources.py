"""Custom resources: served because their CRD exists, validated against its openAPIV3Schema.

What a client sees from a real kube-apiserver: the kind appears in discovery once the CRD is
Established and disappears with it (taking its objects along); wrong types and enums are 422
Invalid with the field path; unknown fields are a 400 under fieldValidation=Strict, pruned with a
Warning header under Warn (the default) and pruned silently under Ignore.
"""

# The client's models make every field Optional; a test asserts on what the server sent, so a
# None where a value belongs fails the assertion anyway. Narrowing each access would only add noise.
# mypy: disable-error-code="union-attr, index, operator, arg-type, misc"

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from playground.runner import Playground

APP_NS = "emojivoto-istio"
GROUP = "example.com"
WIDGET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "minimum": 1},
                "color": {"type": "string", "enum": ["red", "blue"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "replicas": {"type": "integer", "default": 1},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        "status": {
            "type": "object",
            "properties": {"phase": {"type": "string"}, "replicas": {"type": "integer"}},
        },
    },
}
# The seed write-up's fault injection: half the requests to web-svc answered with a 500.
FAULTY_ROUTE: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1alpha3",
    "kind": "VirtualService",
    "metadata": {"name": "emojivoto", "namespace": APP_NS},
    "spec": {
        "hosts": ["emoji-istio.test.net"],
        "gateways": ["emojivoto-gateway"],
        "http": [
            {
                "fault": {"abort": {"httpStatus": 500, "percentage": {"value": 50}}},
                "match": [{"uri": {"prefix": "/"}}],
                "route": [{"destination": {"host": "web-svc", "port": {"number": 80}}}],
            }
        ],
    },
}


def failure(call: Callable[[], object]) -> tuple[int, dict[str, Any]]:
    with pytest.raises(ApiException) as caught:
        call()
    return caught.value.status, json.loads(caught.value.body)


def widget_crd(scope: str = "Namespaced") -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {
                "plural": "widgets",
                "singular": "widget",
                "kind": "Widget",
                "listKind": "WidgetList",
                "shortNames": ["wd"],
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": WIDGET_SCHEMA},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                        },
                    },
                    "additionalPrinterColumns": [
                        {"name": "Color", "type": "string", "jsonPath": ".spec.color"}
                    ],
                }
            ],
        },
    }


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": 1, **spec},
    }


@pytest.fixture
def custom(kube: ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube)


@pytest.fixture
def widgets(kube: ApiClient) -> client.CustomObjectsApi:
    """The article cluster plus the Widget CRD."""
    client.ApiextensionsV1Api(kube).create_custom_resource_definition(widget_crd())
    return client.CustomObjectsApi(kube)


def stored_widgets(custom: client.CustomObjectsApi, namespace: str = "default") -> list[str]:
    listed = custom.list_namespaced_custom_object(GROUP, "v1", namespace, "widgets")
    return [item["metadata"]["name"] for item in listed["items"]]


# ---------------------------------------------------------------- CRD lifecycle


def test_a_new_crd_is_established_and_its_kind_served(kube: ApiClient) -> None:
    extensions = client.ApiextensionsV1Api(kube)

    created = extensions.create_custom_resource_definition(widget_crd())

    conditions = {c.type: c for c in created.status.conditions}
    assert conditions["Established"].status == "True"
    assert conditions["NamesAccepted"].status == "True"
    assert created.status.accepted_names.kind == "Widget"
    assert created.status.stored_versions == ["v1"]
    assert GROUP in {g.name for g in client.ApisApi(kube).get_api_versions().groups}
    resources = {r.name: r for r in client.CustomObjectsApi(kube).get_api_resources(GROUP, "v1").resources}
    assert resources["widgets"].kind == "Widget"
    assert resources["widgets"].namespaced
    assert resources["widgets"].short_names == ["wd"]
    assert {"widgets/status", "widgets/scale"} <= set(resources)


def test_custom_objects_round_trip_with_server_metadata(widgets: client.CustomObjectsApi) -> None:
    created = widgets.create_namespaced_custom_object(
        GROUP, "v1", "default", "widgets", widget("w1", color="red", tags=["a"])
    )

    assert created["metadata"]["uid"]
    assert created["metadata"]["generation"] == 1
    assert int(created["metadata"]["resourceVersion"]) > 0
    assert created["metadata"]["creationTimestamp"].endswith("Z")
    # Defaults from the schema are filled in on write.
    assert created["spec"] == {"size": 1, "color": "red", "tags": ["a"], "replicas": 1}
    read = widgets.get_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w1")
    assert read == created

    patched = widgets.patch_namespaced_custom_object(
        GROUP, "v1", "default", "widgets", "w1", {"spec": {"color": "blue"}}
    )
    assert patched["spec"]["color"] == "blue"
    assert patched["metadata"]["generation"] == 2

    # Defaults are applied before the spec is compared: restating them is no spec change.
    resent = copy.deepcopy(patched)
    del resent["spec"]["replicas"]
    replaced = widgets.replace_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w1", resent)
    assert replaced["spec"]["replicas"] == 1
    assert replaced["metadata"]["generation"] == 2

    removed = widgets.delete_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w1")
    assert removed["metadata"]["name"] == "w1"
    assert stored_widgets(widgets) == []


def test_deleting_the_crd_removes_the_kind_and_its_objects(kube: ApiClient) -> None:
    extensions = client.ApiextensionsV1Api(kube)
    custom = client.CustomObjectsApi(kube)
    extensions.create_custom_resource_definition(widget_crd())
    custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w1"))

    extensions.delete_custom_resource_definition(f"widgets.{GROUP}")

    assert GROUP not in {g.name for g in client.ApisApi(kube).get_api_versions().groups}
    code, body = failure(lambda: custom.list_namespaced_custom_object(GROUP, "v1", "default", "widgets"))
    assert code == 404
    assert body["message"] == "the server could not find the requested resource"
    # A CRD of the same name starts empty: the old objects went with the old definition.
    extensions.create_custom_resource_definition(widget_crd())
    assert stored_widgets(custom) == []


def test_istio_kinds_go_away_with_their_crds(kube: ApiClient, custom: client.CustomObjectsApi) -> None:
    custom.create_namespaced_custom_object(
        "networking.istio.io", "v1alpha3", APP_NS, "virtualservices", copy.deepcopy(FAULTY_ROUTE)
    )

    client.ApiextensionsV1Api(kube).delete_custom_resource_definition("virtualservices.networking.istio.io")

    served = {r.name for r in custom.get_api_resources("networking.istio.io", "v1").resources}
    assert "virtualservices" not in served
    assert {"gateways", "destinationrules"} <= served


def test_a_body_of_another_version_than_the_url_is_a_bad_request(custom: client.CustomObjectsApi) -> None:
    code, body = failure(
        lambda: custom.create_namespaced_custom_object(
            "networking.istio.io", "v1", APP_NS, "virtualservices", copy.deepcopy(FAULTY_ROUTE)
        )
    )

    assert code == 400
    assert body["reason"] == "BadRequest"
    assert body["message"] == (
        "the API version in the data (networking.istio.io/v1alpha3) does not match the expected "
        "API version (networking.istio.io/v1)"
    )


def test_a_kind_without_a_crd_is_not_found(custom: client.CustomObjectsApi) -> None:
    code, body = failure(
        lambda: custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"))
    )

    assert code == 404
    assert body["reason"] == "NotFound"


def test_an_invalid_crd_is_rejected(kube: ApiClient) -> None:
    wrong = widget_crd()
    wrong["metadata"]["name"] = "gadgets.example.com"

    code, body = failure(lambda: client.ApiextensionsV1Api(kube).create_custom_resource_definition(wrong))

    assert code == 422
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    assert GROUP not in {g.name for g in client.ApisApi(kube).get_api_versions().groups}


def test_cluster_scoped_custom_resources(kube: ApiClient) -> None:
    client.ApiextensionsV1Api(kube).create_custom_resource_definition(widget_crd(scope="Cluster"))
    custom = client.CustomObjectsApi(kube)

    created = custom.create_cluster_custom_object(GROUP, "v1", "widgets", widget("global"))

    assert "namespace" not in created["metadata"]
    listed = custom.list_cluster_custom_object(GROUP, "v1", "widgets")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["global"]


# ---------------------------------------------------------------- schema validation


def test_a_wrong_type_is_invalid_with_the_field_path(widgets: client.CustomObjectsApi) -> None:
    code, body = failure(
        lambda: widgets.create_namespaced_custom_object(
            GROUP, "v1", "default", "widgets", widget("w", size="big")
        )
    )

    assert code == 422
    assert body["reason"] == "Invalid"
    assert body["details"]["name"] == "w"
    assert body["details"]["group"] == GROUP
    assert body["details"]["kind"] == "Widget"
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueTypeInvalid",
            "message": 'Invalid value: "string": spec.size in body must be of type integer: "string"',
            "field": "spec.size",
        }
    ]
    assert body["message"] == (
        'Widget.example.com "w" is invalid: spec.size: Invalid value: "string": '
        'spec.size in body must be of type integer: "string"'
    )
    assert stored_widgets(widgets) == []


def test_a_bad_enum_value_is_not_supported(widgets: client.CustomObjectsApi) -> None:
    code, body = failure(
        lambda: widgets.create_namespaced_custom_object(
            GROUP, "v1", "default", "widgets", widget("w", color="green")
        )
    )

    assert code == 422
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueNotSupported",
            "message": 'Unsupported value: "green": supported values: "red", "blue"',
            "field": "spec.color",
        }
    ]
    assert stored_widgets(widgets) == []


def test_several_errors_are_reported_together(widgets: client.CustomObjectsApi) -> None:
    bad = widget("w", color="green", tags=[1])
    del bad["spec"]["size"]

    code, body = failure(
        lambda: widgets.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", bad)
    )

    assert code == 422
    fields = sorted(c["field"] for c in body["details"]["causes"])
    assert fields == ["spec.color", "spec.size", "spec.tags[0]"]


def test_unknown_fields_under_strict_validation_are_a_bad_request(
    widgets: client.CustomObjectsApi,
) -> None:
    body_sent = widget("w", shape="round")
    body_sent["spec"]["extra"] = {"anything": {"goes": True}}

    code, body = failure(
        lambda: widgets.create_namespaced_custom_object(
            GROUP, "v1", "default", "widgets", body_sent, field_validation="Strict"
        )
    )

    assert code == 400
    assert body["reason"] == "BadRequest"
    assert body["message"] == (
        'Widget in version "v1" cannot be handled as a Widget: strict decoding error: '
        'unknown field "spec.shape"'
    )
    assert stored_widgets(widgets) == []


def test_unknown_fields_under_warn_are_pruned_with_a_warning(widgets: client.CustomObjectsApi) -> None:
    sent = widget("w", shape="round")
    sent["spec"]["extra"] = {"kept": 1}

    created, code, headers = widgets.create_namespaced_custom_object_with_http_info(
        GROUP, "v1", "default", "widgets", sent
    )

    assert code == 201
    assert headers["Warning"] == '299 - "unknown field \\"spec.shape\\""'
    assert "shape" not in created["spec"]
    # Below x-kubernetes-preserve-unknown-fields anything is kept.
    assert created["spec"]["extra"] == {"kept": 1}
    stored = widgets.get_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w")
    assert "shape" not in stored["spec"]


def test_each_unknown_field_gets_its_own_warning_header(playground: Playground) -> None:
    with httpx.Client(base_url=playground.url, trust_env=False) as http:
        http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=widget_crd())
        response = http.post(
            f"/apis/{GROUP}/v1/namespaces/default/widgets", json=widget("w", shape="round", weight=3)
        )

    assert response.status_code == 201
    assert response.headers.get_list("warning") == [
        '299 - "unknown field \\"spec.shape\\""',
        '299 - "unknown field \\"spec.weight\\""',
    ]


def test_unknown_fields_under_ignore_are_pruned_silently(widgets: client.CustomObjectsApi) -> None:
    created, code, headers = widgets.create_namespaced_custom_object_with_http_info(
        GROUP, "v1", "default", "widgets", widget("w", shape="round"), field_validation="Ignore"
    )

    assert code == 201
    assert "Warning" not in headers
    assert "shape" not in created["spec"]


def test_patches_are_validated_like_creates(widgets: client.CustomObjectsApi) -> None:
    widgets.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w", color="red"))

    code, body = failure(
        lambda: widgets.patch_namespaced_custom_object(
            GROUP, "v1", "default", "widgets", "w", {"spec": {"color": "green"}}
        )
    )
    assert code == 422 and body["details"]["causes"][0]["field"] == "spec.color"
    code, body = failure(
        lambda: widgets.patch_namespaced_custom_object(
            GROUP, "v1", "default", "widgets", "w", {"spec": {"shape": "x"}}, field_validation="Strict"
        )
    )
    assert code == 400 and 'unknown field "spec.shape"' in body["message"]
    stored = widgets.get_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w")
    assert stored["spec"]["color"] == "red"
    assert stored["metadata"]["generation"] == 1


def test_strategic_merge_patch_on_a_custom_resource_is_unsupported(
    widgets: client.CustomObjectsApi,
) -> None:
    created = widgets.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"))

    code, body = failure(
        lambda: widgets.patch_namespaced_custom_object(
            GROUP,
            "v1",
            "default",
            "widgets",
            "w",
            {"spec": {"size": 2}},
            _content_type="application/strategic-merge-patch+json",
        )
    )

    assert code == 415
    assert body["reason"] == "UnsupportedMediaType"
    assert body["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )
    assert widgets.get_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w") == created


def test_json_patch_on_a_custom_resource(widgets: client.CustomObjectsApi) -> None:
    widgets.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w", tags=["a"]))

    patched = widgets.patch_namespaced_custom_object(
        GROUP,
        "v1",
        "default",
        "widgets",
        "w",
        [{"op": "add", "path": "/spec/tags/-", "value": "b"}],
        _content_type="application/json-patch+json",
    )

    assert patched["spec"]["tags"] == ["a", "b"]


# ---------------------------------------------------------------- conflicts, subresources


def test_stale_replace_of_a_custom_resource_is_a_conflict(widgets: client.CustomObjectsApi) -> None:
    stale = widgets.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"))
    widgets.patch_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w", {"spec": {"size": 2}})
    stale["spec"]["size"] = 3

    code, body = failure(
        lambda: widgets.replace_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w", stale)
    )

    assert code == 409
    assert body["reason"] == "Conflict"
    assert body["message"].startswith('Operation cannot be fulfilled on widgets.example.com "w"')
    assert widgets.get_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w")["spec"]["size"] == 2


def test_a_replace_without_a_resource_version_is_invalid(widgets: client.CustomObjectsApi) -> None:
    widgets.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"))

    # Custom resources allow no unconditional update: a PUT must name the version it replaces.
    code, body = failure(
        lambda: widgets.replace_namespaced_custom_object(
            GROUP, "v1", "default", "widgets", "w", widget("w", size=5)
        )
    )

    assert code == 422
    assert body["message"] == (
        'Widget.example.com "w" is invalid: metadata.resourceVersion: Invalid value: 0x0: '
        "must be specified for an update"
    )
    assert widgets.get_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w")["spec"]["size"] == 1


def test_duplicate_and_missing_namespace_errors(widgets: client.CustomObjectsApi) -> None:
    widgets.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"))

    code, body = failure(
        lambda: widgets.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"))
    )
    assert code == 409
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == 'widgets.example.com "w" already exists'

    code, body = failure(
        lambda: widgets.create_namespaced_custom_object(GROUP, "v1", "nowhere", "widgets", widget("w"))
    )
    assert code == 404
    assert body["message"] == 'namespaces "nowhere" not found'

    code, body = failure(
        lambda: widgets.get_namespaced_custom_object(GROUP, "v1", "default", "widgets", "ghost")
    )
    assert code == 404
    assert body["message"] == 'widgets.example.com "ghost" not found'


def test_status_subresource_separates_spec_and_status(widgets: client.CustomObjectsApi) -> None:
    sent = widget("w")
    sent["status"] = {"phase": "Ignored"}
    created = widgets.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", sent)
    # With a status subresource, status is not writable through the main resource.
    assert "status" not in created

    with_status = widgets.patch_namespaced_custom_object_status(
        GROUP, "v1", "default", "widgets", "w", {"status": {"phase": "Ready"}, "spec": {"size": 9}}
    )
    assert with_status["status"] == {"phase": "Ready"}
    assert with_status["spec"]["size"] == 1
    assert with_status["metadata"]["generation"] == 1

    after = widgets.patch_namespaced_custom_object(
        GROUP, "v1", "default", "widgets", "w", {"spec": {"size": 2}, "status": {"phase": "Lost"}}
    )
    assert after["status"] == {"phase": "Ready"}
    assert after["metadata"]["generation"] == 2


def test_label_selectors_on_custom_resources(widgets: client.CustomObjectsApi) -> None:
    for name, team in (("a", "x"), ("b", "y")):
        body = widget(name)
        body["metadata"]["labels"] = {"team": team}
        widgets.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", body)

    listed = widgets.list_cluster_custom_object(GROUP, "v1", "widgets", label_selector="team!=x")

    assert [i["metadata"]["name"] for i in listed["items"]] == ["b"]
    assert listed["kind"] == "WidgetList"
    assert all(i["kind"] == "Widget" for i in listed["items"])


# ---------------------------------------------------------------- Istio's kinds


def test_the_write_ups_fault_injection_is_accepted(custom: client.CustomObjectsApi) -> None:
    created, code, headers = custom.create_namespaced_custom_object_with_http_info(
        "networking.istio.io",
        "v1alpha3",
        APP_NS,
        "virtualservices",
        copy.deepcopy(FAULTY_ROUTE),
        field_validation="Strict",
    )

    assert code == 201
    assert "Warning" not in headers
    assert created["apiVersion"] == "networking.istio.io/v1alpha3"
    assert created["spec"]["http"][0]["fault"]["abort"] == {"httpStatus": 500, "percentage": {"value": 50}}
    # The storage version serves the same object.
    stored = custom.get_namespaced_custom_object(
        "networking.istio.io", "v1", APP_NS, "virtualservices", "emojivoto"
    )
    assert stored["apiVersion"] == "networking.istio.io/v1"
    assert stored["spec"] == created["spec"]


def test_a_mistyped_fault_is_invalid_with_its_path(custom: client.CustomObjectsApi) -> None:
    route = copy.deepcopy(FAULTY_ROUTE)
    route["apiVersion"] = "networking.istio.io/v1"
    route["spec"]["http"][0]["fault"]["abort"]["httpStatus"] = "500"

    code, body = failure(
        lambda: custom.create_namespaced_custom_object(
            "networking.istio.io", "v1", APP_NS, "virtualservices", route
        )
    )

    assert code == 422
    cause = body["details"]["causes"][0]
    assert cause["field"] == "spec.http[0].fault.abort.httpStatus"
    assert cause["reason"] == "FieldValueTypeInvalid"
    assert body["message"].startswith('VirtualService.networking.istio.io "emojivoto" is invalid: ')
    listed = custom.list_namespaced_custom_object("networking.istio.io", "v1", APP_NS, "virtualservices")
    assert listed["items"] == []


def test_a_misspelt_fault_field_is_caught_under_strict(custom: client.CustomObjectsApi) -> None:
    route = copy.deepcopy(FAULTY_ROUTE)
    route["apiVersion"] = "networking.istio.io/v1"
    route["spec"]["http"][0]["faultx"] = route["spec"]["http"][0].pop("fault")

    code, body = failure(
        lambda: custom.create_namespaced_custom_object(
            "networking.istio.io", "v1", APP_NS, "virtualservices", route, field_validation="Strict"
        )
    )

    assert code == 400
    assert body["message"].endswith('strict decoding error: unknown field "spec.http[0].faultx"')


def test_peer_authentication_mode_is_an_enum(custom: client.CustomObjectsApi) -> None:
    policy = {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "default"},
        "spec": {"mtls": {"mode": "STRICTER"}},
    }

    code, body = failure(
        lambda: custom.create_namespaced_custom_object(
            "security.istio.io", "v1", APP_NS, "peerauthentications", policy
        )
    )

    assert code == 422
    assert body["details"]["causes"][0]["field"] == "spec.mtls.mode"
    assert body["details"]["causes"][0]["message"] == (
        'Unsupported value: "STRICTER": supported values: "UNSET", "DISABLE", "PERMISSIVE", "STRICT"'
    )
    policy["spec"]["mtls"]["mode"] = "STRICT"
    created = custom.create_namespaced_custom_object(
        "security.istio.io", "v1", APP_NS, "peerauthentications", policy
    )
    assert created["spec"]["mtls"]["mode"] == "STRICT"
