"""The playground through the official client's typed APIs, as meshbot and its tests use it.

Each test asserts what a client of a real kube-apiserver would see: discovery documents, the typed
models deserializing (they reject missing required fields), server-set metadata, the Status error
for each failure with its reason and code, and that a rejected request changed nothing.
"""

# The client's models make every field Optional; a test asserts on what the server sent, so a
# None where a value belongs fails the assertion anyway. Narrowing each access would only add noise.
# mypy: disable-error-code="union-attr, index, operator, arg-type, misc"

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from kubernetes import client, watch
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from playground.runner import Playground

APP_NS = "emojivoto-istio"
# Every namespace holds this ConfigMap (the root CA publisher's), so "no ConfigMaps" means just it.
ROOT_CA = "kube-root-ca.crt"


def failure(call: Callable[[], object]) -> tuple[int, dict[str, Any]]:
    """The HTTP status and decoded Status body of a request the server must reject."""
    with pytest.raises(ApiException) as caught:
        call()
    return caught.value.status, json.loads(caught.value.body)


def config_map_names(core: client.CoreV1Api, namespace: str = "default") -> list[str]:
    return [c.metadata.name for c in core.list_namespaced_config_map(namespace).items]


def raw(
    pg: Playground,
    method: str,
    path: str,
    *,
    content: str | None = None,
    content_type: str = "application/json",
    params: dict[str, str] | None = None,
) -> httpx.Response:
    """A request the typed client cannot make (malformed bodies, odd content types, raw watch)."""
    with httpx.Client(base_url=pg.url, trust_env=False) as http:
        return http.request(
            method, path, content=content, params=params, headers={"Content-Type": content_type}
        )


def config_map(
    name: str, data: dict[str, str] | None = None, labels: dict[str, str] | None = None
) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data=data or {"k": "v"})


def deployment(name: str, replicas: int = 1, image: str = "nginx:1.27") -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name=name, image=image)]),
            ),
        ),
    )


@pytest.fixture
def core(kube: ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube)


@pytest.fixture
def apps(kube: ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(kube)


# ---------------------------------------------------------------- discovery


def test_version_reports_a_kubernetes_server(kube: ApiClient) -> None:
    info = client.VersionApi(kube).get_code()

    assert info.major == "1"
    assert info.git_version.startswith(f"v1.{info.minor}.")
    assert info.platform == "linux/amd64"


def test_core_and_group_discovery_list_every_served_kind(kube: ApiClient) -> None:
    assert client.CoreApi(kube).get_api_versions().versions == ["v1"]
    groups = {g.name: g for g in client.ApisApi(kube).get_api_versions().groups}
    for group in (
        "apps",
        "batch",
        "coordination.k8s.io",
        "rbac.authorization.k8s.io",
        "apiextensions.k8s.io",
        "networking.istio.io",
        "security.istio.io",
    ):
        assert group in groups, group
    assert groups["apps"].preferred_version.group_version == "apps/v1"

    core = {r.name: r for r in client.CoreV1Api(kube).get_api_resources().resources}
    for plural in (
        "namespaces",
        "pods",
        "services",
        "endpoints",
        "configmaps",
        "secrets",
        "serviceaccounts",
        "events",
    ):
        assert plural in core, plural
    assert core["pods"].namespaced and not core["namespaces"].namespaced
    assert core["pods"].kind == "Pod" and "po" in core["pods"].short_names
    assert {"pods/log", "pods/status"} <= set(core)
    assert "watch" in core["pods"].verbs and "deletecollection" in core["pods"].verbs

    apps = {r.name: r for r in client.AppsV1Api(kube).get_api_resources().resources}
    assert {"deployments", "deployments/scale", "deployments/status", "replicasets"} <= set(apps)
    assert apps["deployments/scale"].kind == "Scale"
    assert apps["deployments/scale"].group == "autoscaling"
    for api, plurals in (
        (client.BatchV1Api(kube), {"jobs"}),
        (client.CoordinationV1Api(kube), {"leases"}),
        (
            client.RbacAuthorizationV1Api(kube),
            {"roles", "rolebindings", "clusterroles", "clusterrolebindings"},
        ),
        (client.ApiextensionsV1Api(kube), {"customresourcedefinitions"}),
    ):
        assert plurals <= {r.name for r in api.get_api_resources().resources}


def test_istio_kinds_are_discoverable_because_their_crds_exist(kube: ApiClient) -> None:
    resources = client.CustomObjectsApi(kube).get_api_resources("networking.istio.io", "v1")
    by_name = {r.name: r for r in resources.resources}

    assert by_name["virtualservices"].kind == "VirtualService"
    assert "vs" in by_name["virtualservices"].short_names
    assert by_name["gateways"].kind == "Gateway"
    assert by_name["destinationrules"].kind == "DestinationRule"
    security = client.CustomObjectsApi(kube).get_api_resources("security.istio.io", "v1")
    assert "peerauthentications" in {r.name for r in security.resources}


def test_an_unknown_group_or_path_is_not_found(kube: ApiClient) -> None:
    code, body = failure(lambda: client.CustomObjectsApi(kube).get_api_resources("example.com", "v1"))
    assert code == 404
    assert body["reason"] == "NotFound"
    assert body["message"] == "the server could not find the requested resource"


# ---------------------------------------------------------------- typed models


def test_every_built_in_kind_lists_through_its_typed_api(kube: ApiClient) -> None:
    core = client.CoreV1Api(kube)
    apps = client.AppsV1Api(kube)
    rbac = client.RbacAuthorizationV1Api(kube)
    # Deserializing into the typed models is the check: they reject missing required fields.
    listings: dict[str, Any] = {
        "namespaces": core.list_namespace(),
        "pods": core.list_pod_for_all_namespaces(),
        "services": core.list_service_for_all_namespaces(),
        "endpoints": core.list_endpoints_for_all_namespaces(),
        "configmaps": core.list_config_map_for_all_namespaces(),
        "secrets": core.list_secret_for_all_namespaces(),
        "serviceaccounts": core.list_service_account_for_all_namespaces(),
        "events": core.list_event_for_all_namespaces(),
        "deployments": apps.list_deployment_for_all_namespaces(),
        "replicasets": apps.list_replica_set_for_all_namespaces(),
        "jobs": client.BatchV1Api(kube).list_job_for_all_namespaces(),
        "leases": client.CoordinationV1Api(kube).list_lease_for_all_namespaces(),
        "roles": rbac.list_role_for_all_namespaces(),
        "rolebindings": rbac.list_role_binding_for_all_namespaces(),
        "clusterroles": rbac.list_cluster_role(),
        "clusterrolebindings": rbac.list_cluster_role_binding(),
        "crds": client.ApiextensionsV1Api(kube).list_custom_resource_definition(),
    }
    for name, listing in listings.items():
        assert int(listing.metadata.resource_version) > 0, name

    pods = listings["pods"].items
    assert len(pods) == 11
    for pod in pods:
        assert pod.status.phase == "Running"
        for status in pod.status.container_statuses:
            assert status.ready and status.image and status.image_id
            assert status.state.running.started_at is not None
    web = apps.read_namespaced_deployment("web", APP_NS)
    assert web.status.ready_replicas == 1
    assert {c.type: c.status for c in web.status.conditions} == {
        "Available": "True",
        "Progressing": "True",
    }


def test_typed_crud_round_trips_for_each_namespaced_kind(kube: ApiClient) -> None:
    core = client.CoreV1Api(kube)
    rbac = client.RbacAuthorizationV1Api(kube)
    leases = client.CoordinationV1Api(kube)
    ns = "default"
    meta = client.V1ObjectMeta(name="meshbot")
    core.create_namespaced_secret(ns, client.V1Secret(metadata=meta, string_data={"token": "s3cret"}))
    core.create_namespaced_service_account(ns, client.V1ServiceAccount(metadata=meta))
    core.create_namespaced_event(
        ns,
        client.CoreV1Event(
            metadata=client.V1ObjectMeta(name="meshbot.1"),
            involved_object=client.V1ObjectReference(kind="Pod", name="x", namespace=ns),
            reason="Injected",
            message="fault injected",
            type="Normal",
        ),
    )
    leases.create_namespaced_lease(
        ns,
        client.V1Lease(metadata=meta, spec=client.V1LeaseSpec(holder_identity="meshbot-0")),
    )
    rbac.create_namespaced_role(
        ns,
        client.V1Role(
            metadata=meta,
            rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["get", "list"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        ns,
        client.V1RoleBinding(
            metadata=meta,
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="meshbot"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="meshbot", namespace=ns)],
        ),
    )

    secret = core.read_namespaced_secret("meshbot", ns)
    assert secret.type == "Opaque"
    # stringData is write-only: the server stores it base64-encoded under data.
    assert secret.data == {"token": "czNjcmV0"}
    assert secret.string_data is None
    assert core.read_namespaced_service_account("meshbot", ns).metadata.uid
    assert core.read_namespaced_event("meshbot.1", ns).reason == "Injected"
    assert leases.read_namespaced_lease("meshbot", ns).spec.holder_identity == "meshbot-0"
    assert rbac.read_namespaced_role("meshbot", ns).rules[0].verbs == ["get", "list"]
    binding = rbac.read_namespaced_role_binding("meshbot", ns)
    assert binding.role_ref.name == "meshbot"
    assert binding.subjects[0].kind == "ServiceAccount"

    leases.delete_namespaced_lease("meshbot", ns)
    rbac.delete_namespaced_role_binding("meshbot", ns)
    assert [lease.metadata.name for lease in leases.list_namespaced_lease(ns).items] == []
    assert rbac.list_namespaced_role_binding(ns).items == []


# ---------------------------------------------------------------- create, metadata


def test_create_answers_201_with_server_set_metadata(core: client.CoreV1Api) -> None:
    before = int(core.list_namespaced_config_map("default").metadata.resource_version)
    sent = config_map("settings")
    sent.metadata.uid = "client-chosen"

    created, code, headers = core.create_namespaced_config_map_with_http_info("default", sent)

    assert code == 201
    assert created.metadata.uid not in (None, "client-chosen")
    # ConfigMaps have no spec, so upstream keeps no generation for them.
    assert created.metadata.generation is None
    assert int(created.metadata.resource_version) > before
    assert isinstance(created.metadata.creation_timestamp, datetime)
    assert created.metadata.namespace == "default"
    assert created.kind == "ConfigMap" and created.api_version == "v1"
    assert headers["Content-Type"] == "application/json"
    assert core.read_namespaced_config_map("settings", "default") == created


def test_create_with_a_resource_version_is_refused(core: client.CoreV1Api) -> None:
    copied = config_map("copy")
    copied.metadata.resource_version = "42"

    code, body = failure(lambda: core.create_namespaced_config_map("default", copied))

    # etcd's store rejects it with a plain error, which the API server sends as a reason-less 500.
    assert code == 500
    assert body["message"] == "resourceVersion should not be set on objects to be created"
    assert "reason" not in body
    assert config_map_names(core) == [ROOT_CA]


def test_resource_versions_increase_across_kinds(core: client.CoreV1Api) -> None:
    first = core.create_namespaced_config_map("default", config_map("one"))
    second = core.create_namespaced_secret(
        "default", client.V1Secret(metadata=client.V1ObjectMeta(name="two"))
    )
    third = core.patch_namespaced_config_map("one", "default", {"data": {"k": "changed"}})

    versions = [int(o.metadata.resource_version) for o in (first, second, third)]
    assert versions == sorted(versions) and len(set(versions)) == 3


def test_generate_name_gets_a_random_suffix(core: client.CoreV1Api) -> None:
    made = core.create_namespaced_config_map(
        "default",
        client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="meshbot-"), data={}),
    )

    assert made.metadata.name.startswith("meshbot-")
    assert len(made.metadata.name) == len("meshbot-") + 5


def test_generation_counts_spec_changes_only(apps: client.AppsV1Api) -> None:
    created = apps.create_namespaced_deployment("default", deployment("api"))
    assert created.metadata.generation == 1

    labelled = apps.patch_namespaced_deployment("api", "default", {"metadata": {"labels": {"team": "a"}}})
    assert labelled.metadata.generation == 1
    scaled = apps.patch_namespaced_deployment("api", "default", {"spec": {"replicas": 2}})
    assert scaled.metadata.generation == 2
    assert scaled.status.observed_generation == 2


def test_create_of_an_existing_name_is_already_exists(core: client.CoreV1Api) -> None:
    original = core.create_namespaced_config_map("default", config_map("dup", {"v": "1"}))

    code, body = failure(lambda: core.create_namespaced_config_map("default", config_map("dup", {"v": "2"})))

    assert code == 409
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == 'configmaps "dup" already exists'
    assert body["details"] == {"name": "dup", "kind": "configmaps"}
    assert core.read_namespaced_config_map("dup", "default") == original


def test_create_in_a_missing_namespace_is_not_found(core: client.CoreV1Api) -> None:
    code, body = failure(lambda: core.create_namespaced_config_map("nowhere", config_map("x")))

    assert code == 404
    assert body["reason"] == "NotFound"
    assert body["message"] == 'namespaces "nowhere" not found'
    assert body["details"]["name"] == "nowhere"
    assert core.list_config_map_for_all_namespaces(field_selector="metadata.name=x").items == []


def test_invalid_objects_are_rejected_with_field_causes(
    core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    bad_name = config_map("Not_A_Name")
    code, body = failure(lambda: core.create_namespaced_config_map("default", bad_name))
    assert code == 422
    assert body["reason"] == "Invalid"
    assert body["message"] == (
        'ConfigMap "Not_A_Name" is invalid: metadata.name: Invalid value: "Not_A_Name": a lowercase '
        "RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
        "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
        "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    )
    assert body["details"]["causes"][0]["field"] == "metadata.name"

    broken = deployment("broken")
    broken.spec.template.metadata.labels = {"app": "other"}
    code, body = failure(lambda: apps.create_namespaced_deployment("default", broken))
    assert code == 422
    assert body["details"]["kind"] == "Deployment" and body["details"]["group"] == "apps"
    assert [c["field"] for c in body["details"]["causes"]] == ["spec.template.metadata.labels"]
    assert "`selector` does not match template `labels`" in body["message"]

    bad_type = client.V1Service(
        metadata=client.V1ObjectMeta(name="bad"),
        spec=client.V1ServiceSpec(type="Bogus", ports=[client.V1ServicePort(port=80)]),
    )
    code, body = failure(lambda: core.create_namespaced_service("default", bad_type))
    assert code == 422
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueNotSupported",
            "message": 'Unsupported value: "Bogus": supported values: "ClusterIP", "ExternalName", '
            '"LoadBalancer", "NodePort"',
            "field": "spec.type",
        }
    ]
    assert config_map_names(core) == [ROOT_CA]
    assert apps.list_namespaced_deployment("default").items == []
    assert [s.metadata.name for s in core.list_namespaced_service("default").items] == ["kubernetes"]


def test_each_kind_checks_names_by_its_own_rule(kube: ApiClient, core: client.CoreV1Api) -> None:
    # Services are DNS-1035 labels: a leading digit is fine for a ConfigMap, not for a Service.
    core.create_namespaced_config_map("default", config_map("1st"))
    service = client.V1Service(
        metadata=client.V1ObjectMeta(name="1st"),
        spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)]),
    )
    code, body = failure(lambda: core.create_namespaced_service("default", service))
    assert code == 422
    assert "a DNS-1035 label must consist of lower case alphanumeric characters" in body["message"]

    # RBAC names are path segments: the colon of system roles is allowed.
    rbac = client.RbacAuthorizationV1Api(kube)
    role = rbac.create_cluster_role(
        client.V1ClusterRole(metadata=client.V1ObjectMeta(name="meshbot:operator"))
    )
    assert role.metadata.name == "meshbot:operator"

    code, body = failure(
        lambda: core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="x" * 64)))
    )
    assert code == 422
    assert body["details"]["causes"][0]["message"].endswith("must be no more than 63 characters")


def test_immutable_fields_cannot_change(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment("api"))
    patch = {"spec": {"selector": {"matchLabels": {"app": "api", "tier": "x"}}}}

    code, body = failure(lambda: apps.patch_namespaced_deployment("api", "default", patch))

    assert code == 422
    # The new selector no longer matches the template either; upstream lists that first.
    assert [c["field"] for c in body["details"]["causes"]] == [
        "spec.template.metadata.labels",
        "spec.selector",
    ]
    assert "field is immutable" in body["message"]
    assert apps.read_namespaced_deployment("api", "default").spec.selector.match_labels == {"app": "api"}


def test_bad_requests_are_400(playground: Playground, core: client.CoreV1Api) -> None:
    elsewhere = config_map("x")
    elsewhere.metadata.namespace = "kube-system"
    code, body = failure(lambda: core.create_namespaced_config_map("default", elsewhere))
    assert code == 400
    assert body["reason"] == "BadRequest"
    assert body["message"] == (
        "the namespace of the provided object does not match the namespace sent on the request"
    )

    response = raw(playground, "POST", "/api/v1/namespaces/default/configmaps", content="{not json")
    assert response.status_code == 400
    assert response.json()["reason"] == "BadRequest"
    assert config_map_names(core) == [ROOT_CA]


# ---------------------------------------------------------------- get, update, conflicts


def test_get_of_a_missing_object_is_not_found(core: client.CoreV1Api, apps: client.AppsV1Api) -> None:
    code, body = failure(lambda: core.read_namespaced_pod("nope", APP_NS))
    assert code == 404
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "kind": "pods"},
        "code": 404,
    }
    code, body = failure(lambda: apps.read_namespaced_deployment("nope", APP_NS))
    assert code == 404
    assert body["message"] == 'deployments.apps "nope" not found'
    assert body["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}


def test_replace_with_the_current_resource_version_succeeds(core: client.CoreV1Api) -> None:
    current = core.create_namespaced_config_map("default", config_map("cm", {"v": "1"}))
    current.data = {"v": "2"}

    replaced = core.replace_namespaced_config_map("cm", "default", current)

    assert replaced.data == {"v": "2"}
    assert int(replaced.metadata.resource_version) > int(current.metadata.resource_version)
    assert replaced.metadata.uid == current.metadata.uid
    assert replaced.metadata.creation_timestamp == current.metadata.creation_timestamp


def test_replace_with_a_stale_resource_version_is_a_conflict(core: client.CoreV1Api) -> None:
    stale = core.create_namespaced_config_map("default", config_map("cm", {"v": "1"}))
    core.patch_namespaced_config_map("cm", "default", {"data": {"v": "2"}})
    stale.data = {"v": "3"}

    code, body = failure(lambda: core.replace_namespaced_config_map("cm", "default", stale))

    assert code == 409
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on configmaps "cm": the object has been modified; please '
        "apply your changes to the latest version and try again"
    )
    assert core.read_namespaced_config_map("cm", "default").data == {"v": "2"}


def test_replace_of_a_missing_object_is_not_found(core: client.CoreV1Api) -> None:
    code, body = failure(lambda: core.replace_namespaced_config_map("ghost", "default", config_map("ghost")))

    assert code == 404 and body["reason"] == "NotFound"
    assert config_map_names(core) == [ROOT_CA]


def test_a_no_op_update_keeps_the_resource_version(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map("default", config_map("cm"))

    same = core.replace_namespaced_config_map("cm", "default", created)

    assert same.metadata.resource_version == created.metadata.resource_version


# ---------------------------------------------------------------- patch


def test_merge_patch_changes_only_what_it_names(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", config_map("cm", {"a": "1", "b": "2"}, {"team": "x"}))

    patched = core.patch_namespaced_config_map(
        "cm",
        "default",
        {"data": {"a": None, "c": "3"}},
        _content_type="application/merge-patch+json",
    )

    assert patched.data == {"b": "2", "c": "3"}
    assert patched.metadata.labels == {"team": "x"}


def test_json_patch_applies_operations_in_order(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", config_map("cm", {"a": "1"}))
    ops = [
        {"op": "add", "path": "/data/b", "value": "2"},
        {"op": "test", "path": "/data/a", "value": "1"},
        {"op": "remove", "path": "/data/a"},
    ]

    patched = core.patch_namespaced_config_map("cm", "default", ops)

    assert patched.data == {"b": "2"}


def test_a_failing_json_patch_test_changes_nothing(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map("default", config_map("cm", {"a": "1"}))
    ops = [
        {"op": "replace", "path": "/data/a", "value": "2"},
        {"op": "test", "path": "/data/a", "value": "1"},
    ]

    code, body = failure(lambda: core.patch_namespaced_config_map("cm", "default", ops))

    assert code == 422
    assert body["reason"] == "Invalid"
    assert core.read_namespaced_config_map("cm", "default") == created


def test_strategic_merge_patch_merges_containers_by_name(apps: client.AppsV1Api) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web-svc", "image": "web:v12"}]}}}}

    # The client sends a dict body to patch_* as a strategic merge patch.
    patched = apps.patch_namespaced_deployment("web", APP_NS, patch)

    containers = patched.spec.template.spec.containers
    assert [c.name for c in containers] == ["web-svc"]
    assert containers[0].image == "web:v12"
    assert [p.container_port for p in containers[0].ports] == [8080]
    assert {e.name for e in containers[0].env} >= {"WEB_PORT", "INDEX_BUNDLE"}
    assert patched.metadata.generation == 2


def test_a_patch_with_a_stale_resource_version_is_a_conflict(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map("default", config_map("cm", {"a": "1"}))
    core.patch_namespaced_config_map("cm", "default", {"data": {"a": "2"}})
    stale = {"metadata": {"resourceVersion": created.metadata.resource_version}, "data": {"a": "3"}}

    code, body = failure(lambda: core.patch_namespaced_config_map("cm", "default", stale))

    assert code == 409 and body["reason"] == "Conflict"
    assert core.read_namespaced_config_map("cm", "default").data == {"a": "2"}


def test_an_unknown_patch_type_is_unsupported_media_type(
    playground: Playground, core: client.CoreV1Api
) -> None:
    before = core.read_namespaced_service("kubernetes", "default")

    response = raw(
        playground,
        "PATCH",
        "/api/v1/namespaces/default/services/kubernetes",
        content='{"metadata": {"labels": {"x": "y"}}}',
        content_type="text/plain",
    )

    assert response.status_code == 415
    assert response.json()["reason"] == "UnsupportedMediaType"
    assert response.json()["message"].startswith("the body of the request was in an unknown format")
    assert core.read_namespaced_service("kubernetes", "default") == before


def test_patch_of_a_missing_object_is_not_found(core: client.CoreV1Api) -> None:
    code, body = failure(lambda: core.patch_namespaced_config_map("ghost", "default", {"data": {}}))

    assert code == 404 and body["message"] == 'configmaps "ghost" not found'


# ---------------------------------------------------------------- selectors


def test_label_selectors(core: client.CoreV1Api) -> None:
    for name, labels in (
        ("a", {"app": "web", "tier": "front"}),
        ("b", {"app": "api", "tier": "back"}),
        ("c", {"app": "db"}),
    ):
        core.create_namespaced_config_map("default", config_map(name, labels=labels))

    def names(selector: str) -> list[str]:
        return [
            c.metadata.name for c in core.list_namespaced_config_map("default", label_selector=selector).items
        ]

    assert names("app=web") == ["a"]
    assert names("app==api") == ["b"]
    # Objects without the label match != and !, as the root CA ConfigMap shows.
    assert names("app!=web") == ["b", "c", ROOT_CA]
    assert names("app in (web, db)") == ["a", "c"]
    assert names("app notin (web,db)") == ["b", ROOT_CA]
    assert names("tier") == ["a", "b"]
    assert names("!tier") == ["c", ROOT_CA]
    assert names("app,tier=back") == ["b"]
    assert names("app=nothing") == []


def test_a_malformed_label_selector_is_a_bad_request(core: client.CoreV1Api) -> None:
    code, body = failure(lambda: core.list_namespaced_pod(APP_NS, label_selector="app in web"))

    assert code == 400
    assert body["reason"] == "BadRequest"
    assert "unable to parse requirement" in body["message"]


def test_field_selectors(core: client.CoreV1Api) -> None:
    everywhere = core.list_pod_for_all_namespaces(field_selector=f"metadata.namespace={APP_NS}")
    assert len(everywhere.items) == 4
    assert {p.metadata.namespace for p in everywhere.items} == {APP_NS}

    running = core.list_namespaced_pod(APP_NS, field_selector="status.phase=Running")
    assert len(running.items) == 4
    assert core.list_namespaced_pod(APP_NS, field_selector="status.phase!=Running").items == []

    named = core.list_namespace(field_selector="metadata.name=istio-system")
    assert [n.metadata.name for n in named.items] == ["istio-system"]
    both = core.list_service_for_all_namespaces(
        field_selector=f"metadata.name=web-svc,metadata.namespace={APP_NS}"
    )
    assert [s.metadata.name for s in both.items] == ["web-svc"]


def test_kind_specific_field_selectors(core: client.CoreV1Api) -> None:
    balancers = core.list_service_for_all_namespaces(field_selector="spec.type=LoadBalancer")
    assert [s.metadata.name for s in balancers.items] == ["istio-ingressgateway"]
    headless = core.list_namespaced_service("istio-system", field_selector="spec.clusterIP=None")
    assert [s.metadata.name for s in headless.items] == ["jaeger-agent", "jaeger-collector-headless"]
    assert [n.metadata.name for n in core.list_namespace(field_selector="status.phase!=Active").items] == []
    core.create_namespaced_event(
        APP_NS,
        client.CoreV1Event(
            metadata=client.V1ObjectMeta(name="web.1"),
            involved_object=client.V1ObjectReference(kind="Pod", name="web-1", namespace=APP_NS),
            reason="Unhealthy",
            type="Warning",
        ),
    )
    events = core.list_namespaced_event(APP_NS, field_selector="involvedObject.name=web-1,type=Warning")
    assert [e.reason for e in events.items] == ["Unhealthy"]


def test_an_unsupported_field_selector_is_a_bad_request(core: client.CoreV1Api) -> None:
    code, body = failure(
        lambda: core.list_namespaced_service(APP_NS, field_selector="spec.sessionAffinity=None")
    )

    assert code == 400
    assert body["reason"] == "BadRequest"
    assert body["message"] == "field label not supported: spec.sessionAffinity"


def test_list_pages_with_limit_and_continue(core: client.CoreV1Api) -> None:
    first = core.list_service_for_all_namespaces(limit=5)
    assert len(first.items) == 5
    assert first.metadata._continue
    assert first.metadata.remaining_item_count == 11

    rest = core.list_service_for_all_namespaces(limit=100, _continue=first.metadata._continue)
    assert len(rest.items) == 11
    assert not rest.metadata._continue
    names = [(s.metadata.namespace, s.metadata.name) for s in first.items + rest.items]
    assert names == sorted(names)


# ---------------------------------------------------------------- subresources


def test_scale_subresource_reads_and_sets_replicas(apps: client.AppsV1Api) -> None:
    scale = apps.read_namespaced_deployment_scale("web", APP_NS)
    assert scale.kind == "Scale" and scale.api_version == "autoscaling/v1"
    assert scale.spec.replicas == 1
    assert scale.status.selector == "app=web-svc,version=v11"

    updated = apps.patch_namespaced_deployment_scale("web", APP_NS, {"spec": {"replicas": 3}})
    assert updated.spec.replicas == 3
    assert updated.status.replicas == 3
    assert apps.read_namespaced_deployment("web", APP_NS).spec.replicas == 3

    scale = apps.read_namespaced_deployment_scale("web", APP_NS)
    scale.spec.replicas = 2
    assert apps.replace_namespaced_deployment_scale("web", APP_NS, scale).spec.replicas == 2


def test_a_negative_scale_is_invalid(apps: client.AppsV1Api) -> None:
    code, body = failure(
        lambda: apps.patch_namespaced_deployment_scale("web", APP_NS, {"spec": {"replicas": -1}})
    )

    assert code == 422
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "spec.replicas"
    assert apps.read_namespaced_deployment("web", APP_NS).spec.replicas == 1


def test_status_subresource_writes_status_and_the_main_resource_ignores_it(
    core: client.CoreV1Api,
) -> None:
    lb = {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}}
    patched = core.patch_namespaced_service_status("web-svc", APP_NS, lb)
    assert patched.status.load_balancer.ingress[0].ip == "192.0.2.10"

    ignored = {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.99"}]}}}
    after = core.patch_namespaced_service("web-svc", APP_NS, ignored)
    assert after.status.load_balancer.ingress[0].ip == "192.0.2.10"


def test_pod_log_requires_a_container_name_when_there_are_several(core: client.CoreV1Api) -> None:
    pod = core.list_namespaced_pod("istio-system", label_selector="app=prometheus").items[0]

    code, body = failure(lambda: core.read_namespaced_pod_log(pod.metadata.name, "istio-system"))

    assert code == 400 and body["reason"] == "BadRequest"
    assert body["message"].startswith(f"a container name must be specified for pod {pod.metadata.name}")
    first = pod.spec.containers[0].name
    # A simulated container writes nothing of its own: its log says so rather than being empty.
    log = core.read_namespaced_pod_log(pod.metadata.name, "istio-system", container=first)
    assert f"container {first} (" in log and "simulated pod" in log


# ---------------------------------------------------------------- delete


def test_delete_removes_the_object_and_a_second_delete_is_not_found(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map("default", config_map("cm"))

    status = core.delete_namespaced_config_map("cm", "default")

    assert status["kind"] == "Status" and status["status"] == "Success"
    assert status["details"] == {"name": "cm", "kind": "configmaps", "uid": created.metadata.uid}
    code, body = failure(lambda: core.read_namespaced_config_map("cm", "default"))
    assert code == 404
    code, body = failure(lambda: core.delete_namespaced_config_map("cm", "default"))
    assert code == 404 and body["reason"] == "NotFound"


def test_delete_with_a_stale_precondition_is_a_conflict(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map("default", config_map("cm"))
    core.patch_namespaced_config_map("cm", "default", {"data": {"k": "new"}})
    stale = client.V1DeleteOptions(
        preconditions=client.V1Preconditions(resource_version=created.metadata.resource_version)
    )

    code, body = failure(lambda: core.delete_namespaced_config_map("cm", "default", body=stale))

    assert code == 409 and body["reason"] == "Conflict"
    assert core.read_namespaced_config_map("cm", "default").data == {"k": "new"}


def test_deleting_a_namespace_deletes_what_is_in_it(core: client.CoreV1Api, apps: client.AppsV1Api) -> None:
    core.delete_namespace(APP_NS)

    code, _ = failure(lambda: core.read_namespace(APP_NS))
    assert code == 404
    for listing in (
        core.list_namespaced_pod(APP_NS),
        core.list_namespaced_service(APP_NS),
        core.list_namespaced_service_account(APP_NS),
        core.list_namespaced_endpoints(APP_NS),
        apps.list_namespaced_deployment(APP_NS),
        apps.list_namespaced_replica_set(APP_NS),
    ):
        assert listing.items == []
    assert len(core.list_namespaced_pod("istio-system").items) == 7


def test_deleting_a_deployment_collects_its_replicasets_and_pods(
    core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    apps.delete_namespaced_deployment("web", APP_NS)

    assert apps.list_namespaced_replica_set(APP_NS, label_selector="app=web-svc").items == []
    assert core.list_namespaced_pod(APP_NS, label_selector="app=web-svc").items == []
    assert len(core.list_namespaced_pod(APP_NS).items) == 3


def test_delete_collection_removes_only_what_the_selector_matches(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", config_map("a", labels={"team": "x"}))
    core.create_namespaced_config_map("default", config_map("b", labels={"team": "y"}))

    core.delete_collection_namespaced_config_map("default", label_selector="team=x")

    assert config_map_names(core) == ["b", ROOT_CA]


# ---------------------------------------------------------------- watch


def first_events(stream: Iterator[dict[str, Any]], count: int) -> list[tuple[str, str, str]]:
    """The first `count` events of a watch, then the watch is closed (no waiting for its timeout)."""
    seen: list[tuple[str, str, str]] = []
    for event in stream:
        seen.append((event["type"], event["object"].metadata.name, event["object"].data.get("k", "")))
        if len(seen) == count:
            break
    return seen


def test_watch_from_a_resource_version_sees_added_modified_deleted(core: client.CoreV1Api) -> None:
    start = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", config_map("cm", {"k": "1"}))
    core.patch_namespaced_config_map("cm", "default", {"data": {"k": "2"}})
    core.delete_namespaced_config_map("cm", "default")

    stream = watch.Watch().stream(
        core.list_namespaced_config_map, "default", resource_version=start, timeout_seconds=5
    )

    assert first_events(stream, 3) == [
        ("ADDED", "cm", "1"),
        ("MODIFIED", "cm", "2"),
        ("DELETED", "cm", "2"),
    ]


def test_watch_without_a_resource_version_starts_with_current_objects(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", config_map("existing", {"k": "0"}))
    events: list[tuple[str, str, str]] = []
    watcher = watch.Watch()

    def consume() -> None:
        for event in watcher.stream(core.list_namespaced_config_map, "default", timeout_seconds=5):
            events.append((event["type"], event["object"].metadata.name, event["object"].data.get("k", "")))
            if event["type"] == "DELETED":
                watcher.stop()

    reader = threading.Thread(target=consume)
    reader.start()
    _wait_for(lambda: len(events) == 2)
    core.create_namespaced_config_map("default", config_map("live", {"k": "1"}))
    core.delete_namespaced_config_map("live", "default")
    reader.join(timeout=5)

    assert events == [
        ("ADDED", "existing", "0"),
        ("ADDED", ROOT_CA, ""),
        ("ADDED", "live", "1"),
        ("DELETED", "live", "1"),
    ]


def test_watch_filters_by_label_selector(core: client.CoreV1Api) -> None:
    start = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", config_map("mine", labels={"team": "a"}))
    core.create_namespaced_config_map("default", config_map("theirs", labels={"team": "b"}))
    core.create_namespaced_config_map("default", config_map("mine-too", labels={"team": "a"}))

    stream = watch.Watch().stream(
        core.list_namespaced_config_map,
        "default",
        resource_version=start,
        label_selector="team=a",
        timeout_seconds=5,
    )

    assert [name for _, name, _ in first_events(stream, 2)] == ["mine", "mine-too"]


def test_a_quiet_watch_ends_after_timeout_seconds(core: client.CoreV1Api) -> None:
    start = core.list_namespaced_config_map("default").metadata.resource_version

    events = list(
        watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version=start, timeout_seconds=1
        )
    )

    assert events == []


def test_watch_from_a_compacted_resource_version_is_410_gone(
    playground: Playground, core: client.CoreV1Api
) -> None:
    start = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", config_map("cm"))
    playground.api.store.compact(("", "configmaps"))

    with pytest.raises(ApiException) as caught:
        list(
            watch.Watch().stream(
                core.list_namespaced_config_map, "default", resource_version=start, timeout_seconds=1
            )
        )

    assert caught.value.status == 410
    assert caught.value.reason.startswith("Expired: too old resource version: ")


def test_raw_watch_stream_is_newline_delimited_json(playground: Playground, core: client.CoreV1Api) -> None:
    start = core.list_namespace().metadata.resource_version
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="fresh")))
    params = {"watch": "true", "resourceVersion": start, "timeoutSeconds": "5"}

    with (
        httpx.Client(base_url=playground.url, trust_env=False) as http,
        http.stream("GET", "/api/v1/namespaces", params=params) as response,
    ):
        first = json.loads(next(response.iter_lines()))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert first["type"] == "ADDED"
    assert first["object"]["metadata"]["name"] == "fresh"
    assert first["object"]["kind"] == "Namespace"
    assert first["object"]["apiVersion"] == "v1"


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    done = threading.Event()
    deadline = 0.0
    while not condition():
        if deadline > timeout:
            raise AssertionError("condition not met in time")
        done.wait(0.01)
        deadline += 0.01
