"""Test hooks: what a test can make the playground do, over HTTP (/_playground/…) or in process.

Bearer-token authentication (401, and 403 for a read-only token's write), the next N requests on a
path failing or hanging, added latency, the request log, failing Jobs and istioctl. Each hook is
checked through the official client, as the code under test would meet it.
"""

# The client's models make every field Optional; a test asserts on what the server sent, so a
# None where a value belongs fails the assertion anyway. Narrowing each access would only add noise.
# mypy: disable-error-code="union-attr, index, operator, arg-type, misc"

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import urllib3
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from playground.hooks import Grant
from playground.runner import Playground
from tests.conftest import kube_client_for

APP_NS = "emojivoto-istio"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
# Every namespace holds this ConfigMap (the root CA publisher's), so "no ConfigMaps" means just it.
ROOT_CA = "kube-root-ca.crt"


def failure(call: Callable[[], object]) -> tuple[int, dict[str, Any]]:
    with pytest.raises(ApiException) as caught:
        call()
    return caught.value.status, json.loads(caught.value.body)


def hook(pg: Playground, method: str, name: str, body: Any = None) -> Any:
    with httpx.Client(base_url=pg.url, trust_env=False) as http:
        response = http.request(method, f"/_playground/{name}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def names(listing: client.V1ConfigMapList) -> list[str]:
    return [item.metadata.name for item in listing.items]


def config_map(name: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"k": "v"})


@pytest.fixture
def core(kube: ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube)


@pytest.fixture
def tokens(playground: Playground) -> Iterator[dict[str, client.CoreV1Api]]:
    """Auth required (set over HTTP); a CoreV1Api per token: admin, reader, wrong and none."""
    hook(
        playground,
        "POST",
        "auth",
        {"tokens": {"admin-token": {"user": "admin"}, "reader-token": {"user": "alice", "readOnly": True}}},
    )
    clients = {
        name: kube_client_for(playground, token)
        for name, token in (
            ("admin", "admin-token"),
            ("reader", "reader-token"),
            ("wrong", "guess"),
            ("none", None),
        )
    }
    yield {name: client.CoreV1Api(api) for name, api in clients.items()}
    for api in clients.values():
        api.close()


# ---------------------------------------------------------------- authentication


def test_without_a_token_or_with_a_wrong_one_requests_are_unauthorized(
    tokens: dict[str, client.CoreV1Api],
) -> None:
    for who in ("none", "wrong"):
        code, body = failure(lambda who=who: tokens[who].list_namespaced_pod(APP_NS))
        assert code == 401
        assert body == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401,
        }
    assert len(tokens["admin"].list_namespaced_pod(APP_NS).items) == 4


def test_a_read_only_token_reads_but_may_not_write(tokens: dict[str, client.CoreV1Api]) -> None:
    reader = tokens["reader"]
    assert len(reader.list_namespaced_pod(APP_NS).items) == 4

    code, body = failure(lambda: reader.create_namespaced_config_map("default", config_map("x")))
    assert code == 403
    assert body["reason"] == "Forbidden"
    assert body["message"] == (
        'configmaps is forbidden: User "alice" cannot create resource "configmaps" in API group "" '
        'in the namespace "default"'
    )
    assert body["details"] == {"kind": "configmaps"}

    code, body = failure(
        lambda: client.AppsV1Api(reader.api_client).patch_namespaced_deployment_scale(
            "web", APP_NS, {"spec": {"replicas": 3}}
        )
    )
    assert code == 403
    assert body["message"] == (
        'deployments.apps "web" is forbidden: User "alice" cannot patch resource "deployments/scale" '
        'in API group "apps" in the namespace "emojivoto-istio"'
    )
    code, body = failure(lambda: reader.delete_namespace(APP_NS))
    assert code == 403
    assert body["message"].endswith(
        'cannot delete resource "namespaces" in API group "" in the namespace "emojivoto-istio"'
    )

    admin = tokens["admin"]
    assert names(admin.list_namespaced_config_map("default")) == [ROOT_CA]
    assert admin.read_namespace(APP_NS).status.phase == "Active"
    assert (
        client.AppsV1Api(admin.api_client).read_namespaced_deployment_scale("web", APP_NS).spec.replicas == 1
    )


def test_auth_is_set_in_process_too_and_hooks_stay_reachable(playground: Playground) -> None:
    playground.hooks.require_tokens({"t": Grant("bob")})
    with kube_client_for(playground) as anonymous, kube_client_for(playground, "t") as bob:
        code, _ = failure(lambda: client.CoreV1Api(anonymous).list_namespace())
        assert code == 401
        assert client.CoreV1Api(bob).list_namespace().items
        # The test hooks themselves need no token.
        assert hook(playground, "GET", "requests")

        hook(playground, "POST", "auth", {"tokens": None})
        assert client.CoreV1Api(anonymous).list_namespace().items


# ---------------------------------------------------------------- faults


def test_the_next_requests_on_a_path_fail_then_it_recovers(
    playground: Playground, core: client.CoreV1Api
) -> None:
    hook(playground, "POST", "faults", {"path": "/namespaces/default/configmaps$", "count": 2, "code": 500})

    for _ in range(2):
        code, body = failure(lambda: core.list_namespaced_config_map("default"))
        assert code == 500
        assert body["reason"] == "InternalError"
        assert body["kind"] == "Status" and body["code"] == 500
    assert names(core.list_namespaced_config_map("default")) == [ROOT_CA]
    # Other paths were never affected.
    assert core.list_namespaced_pod(APP_NS).items


def test_an_injected_conflict_rejects_the_write(playground: Playground, core: client.CoreV1Api) -> None:
    playground.hooks.fail_next(r"/configmaps", code=409, method="POST")

    code, body = failure(lambda: core.create_namespaced_config_map("default", config_map("x")))

    assert code == 409
    assert body["reason"] == "Conflict"
    assert names(core.list_namespaced_config_map("default")) == [ROOT_CA]
    assert core.create_namespaced_config_map("default", config_map("x")).metadata.name == "x"


def impatient(pg: Playground) -> ApiClient:
    """A client that gives up instead of retrying: urllib3 would otherwise retry a read timeout."""
    api = kube_client_for(pg)
    api.configuration.retries = False
    api.rest_client = client.rest.RESTClientObject(api.configuration)
    return api


def test_a_hung_request_times_out_the_client_and_the_next_one_is_served(playground: Playground) -> None:
    hook(playground, "POST", "faults", {"path": "/api/v1/namespaces$", "hang": 5})

    with impatient(playground) as api:
        core = client.CoreV1Api(api)
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            core.list_namespace(_request_timeout=0.2)

        assert len(core.list_namespace(_request_timeout=2).items) == 6


def test_a_retrying_client_gets_past_a_single_hang(playground: Playground, core: client.CoreV1Api) -> None:
    playground.hooks.hang_next("/api/v1/namespaces$", seconds=5)

    assert len(core.list_namespace(_request_timeout=0.2).items) == 6


def test_faults_can_be_cleared(playground: Playground, core: client.CoreV1Api) -> None:
    playground.hooks.fail_next("/configmaps", count=10)

    hook(playground, "DELETE", "faults")

    assert names(core.list_namespaced_config_map("default")) == [ROOT_CA]


def test_latency_delays_every_request(playground: Playground) -> None:
    hook(playground, "POST", "latency", {"seconds": 2})
    with impatient(playground) as api:
        core = client.CoreV1Api(api)
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            core.list_namespace(_request_timeout=0.2)

        hook(playground, "POST", "latency", {"seconds": 0})
        assert core.list_namespace(_request_timeout=2).items


# ---------------------------------------------------------------- request log


def test_the_request_log_shows_what_the_client_sent(playground: Playground, core: client.CoreV1Api) -> None:
    hook(playground, "DELETE", "requests")

    core.create_namespaced_config_map("default", config_map("cm"))
    core.patch_namespaced_config_map("cm", "default", {"data": {"k": "w"}}, field_manager="meshbot")
    failure(lambda: core.read_namespaced_config_map("ghost", "default"))

    log = hook(playground, "GET", "requests")
    assert [(r["method"], r["path"], r["status"]) for r in log] == [
        ("POST", CONFIGMAPS, 201),
        ("PATCH", f"{CONFIGMAPS}/cm", 200),
        ("GET", f"{CONFIGMAPS}/ghost", 404),
    ]
    patch = log[1]
    assert patch["contentType"] == "application/strategic-merge-patch+json"
    assert patch["query"] == "fieldManager=meshbot"
    assert json.loads(patch["body"]) == {"data": {"k": "w"}}
    writes = playground.hooks.writes()
    assert [(w.method, w.path) for w in writes] == [("POST", CONFIGMAPS), ("PATCH", f"{CONFIGMAPS}/cm")]


# ---------------------------------------------------------------- jobs and istioctl


def test_the_jobs_fail_hook_fails_a_job_with_a_log(playground: Playground, kube: ApiClient) -> None:
    hook(playground, "POST", "jobs/fail", {"namespace": "default", "name": "migrate", "log": "boom\n"})
    batch = client.BatchV1Api(kube)

    batch.create_namespaced_job(
        "default",
        client.V1Job(
            metadata=client.V1ObjectMeta(name="migrate"),
            spec=client.V1JobSpec(
                backoff_limit=0,
                template=client.V1PodTemplateSpec(
                    spec=client.V1PodSpec(
                        restart_policy="Never",
                        containers=[client.V1Container(name="migrate", image="meshbot:dev")],
                    )
                ),
            ),
        ),
    )

    assert {c.type for c in batch.read_namespaced_job("migrate", "default").status.conditions} >= {"Failed"}
    core = client.CoreV1Api(kube)
    [pod] = core.list_namespaced_pod("default", label_selector="job-name=migrate").items
    assert core.read_namespaced_pod_log(pod.metadata.name, "default") == "boom\n"


def test_the_istioctl_hook_installs_into_a_bare_cluster(make_playground: Callable[..., Playground]) -> None:
    bare = make_playground("article-bare")

    assert hook(bare, "POST", "istioctl", {"args": ["version"]}) == {
        "code": 0,
        "output": 'client version: 1.24.2\nno running Istio pods in "istio-system"\n',
    }
    installed = hook(bare, "POST", "istioctl", {"args": ["install", "--set", "profile=demo", "-y"]})
    assert installed["code"] == 0
    assert installed["output"].endswith("✔ Installation complete\n")
    version = hook(bare, "POST", "istioctl", {"args": ["version"]})
    assert version["output"].endswith("control plane version: 1.24.2\n")
    refused = hook(bare, "POST", "istioctl", {"args": ["install"]})
    assert refused["code"] == 1


def test_an_unknown_hook_is_not_found(playground: Playground) -> None:
    with httpx.Client(base_url=playground.url, trust_env=False) as http:
        response = http.post("/_playground/nonsense", json={})

    assert response.status_code == 404
    assert response.json()["reason"] == "NotFound"
