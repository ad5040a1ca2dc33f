"""The controller loop: what a settled cluster shows right after each write.

Deployments keep their pods and follow /scale and rollout restarts; the injector adds istio-proxy
to pods of labelled namespaces only while istiod runs; readiness reaches Deployments and
Endpoints; Jobs run to completion or, when a test asks, to failure with a readable log.
"""

# The client's models make every field Optional; a test asserts on what the server sent, so a
# None where a value belongs fails the assertion anyway. Narrowing each access would only add noise.
# mypy: disable-error-code="union-attr, index, operator, arg-type, misc"

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from playground.runner import Playground
from tests.conftest import kube_client_for

APP_NS = "emojivoto-istio"


@pytest.fixture
def core(kube: ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube)


@pytest.fixture
def apps(kube: ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(kube)


@pytest.fixture
def bare(make_playground: Callable[..., Playground]) -> Iterator[ApiClient]:
    """The write-up's cluster before Istio: emojivoto running, no istiod, no Istio CRDs."""
    with kube_client_for(make_playground("article-bare")) as api_client:
        yield api_client


def pods_of(core: client.CoreV1Api, app: str, namespace: str = APP_NS) -> list[client.V1Pod]:
    return core.list_namespaced_pod(namespace, label_selector=f"app={app}").items


def names(pods: list[client.V1Pod]) -> set[str]:
    return {p.metadata.name for p in pods}


def enable_injection(core: client.CoreV1Api, namespace: str = APP_NS) -> None:
    core.patch_namespace(namespace, {"metadata": {"labels": {"istio-injection": "enabled"}}})


def restart(
    apps: client.AppsV1Api, name: str, namespace: str = APP_NS, at: str = "2026-01-01T00:00:00Z"
) -> None:
    """What `kubectl rollout restart` sends."""
    patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": at}}}}}
    apps.patch_namespaced_deployment(name, namespace, patch)


def job(name: str, image: str = "busybox:1.36", args: list[str] | None = None) -> client.V1Job:
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1JobSpec(
            backoff_limit=1,
            template=client.V1PodTemplateSpec(
                spec=client.V1PodSpec(
                    restart_policy="Never",
                    containers=[client.V1Container(name="main", image=image, args=args)],
                )
            ),
        ),
    )


# ---------------------------------------------------------------- deployments


def test_a_new_deployment_gets_a_replicaset_and_ready_pods(
    apps: client.AppsV1Api, core: client.CoreV1Api
) -> None:
    labels = {"app": "api"}
    apps.create_namespaced_deployment(
        "default",
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="api"),
            spec=client.V1DeploymentSpec(
                replicas=2,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(containers=[client.V1Container(name="api", image="nginx:1.27")]),
                ),
            ),
        ),
    )

    deployment = apps.read_namespaced_deployment("api", "default")
    assert deployment.status.replicas == 2
    assert deployment.status.ready_replicas == 2
    assert deployment.status.available_replicas == 2
    assert deployment.status.updated_replicas == 2
    assert deployment.status.observed_generation == 1
    assert deployment.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    [replicaset] = apps.list_namespaced_replica_set("default", label_selector="app=api").items
    owner = replicaset.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.controller) == ("Deployment", "api", True)
    assert replicaset.metadata.name.startswith("api-")
    template_hash = replicaset.metadata.labels["pod-template-hash"]
    assert replicaset.metadata.name == f"api-{template_hash}"
    # Shaped like upstream's: a decimal hash through SafeEncodeString, then a random 5-letter suffix.
    assert re.fullmatch(r"[4-9bcdf]{1,10}", template_hash)
    pods = pods_of(core, "api", "default")
    assert len(pods) == 2
    for pod in pods:
        assert re.fullmatch(rf"api-{template_hash}-[bcdfghjklmnpqrstvwxz2456789]{{5}}", pod.metadata.name)
        assert pod.metadata.owner_references[0].name == replicaset.metadata.name
        assert pod.status.phase == "Running"
        assert pod.status.pod_ip and pod.spec.node_name
        assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True"
    assert len({p.status.pod_ip for p in pods}) == 2


def test_a_deleted_pod_is_replaced(core: client.CoreV1Api) -> None:
    [old] = pods_of(core, "web-svc")

    core.delete_namespaced_pod(old.metadata.name, APP_NS)

    [new] = pods_of(core, "web-svc")
    assert new.metadata.name != old.metadata.name
    assert new.metadata.owner_references[0].name == old.metadata.owner_references[0].name
    assert new.status.phase == "Running"


def test_scaling_through_the_scale_subresource_moves_the_pod_count(
    apps: client.AppsV1Api, core: client.CoreV1Api
) -> None:
    apps.patch_namespaced_deployment_scale("voting", APP_NS, {"spec": {"replicas": 3}})
    assert len(pods_of(core, "voting-svc")) == 3
    deployment = apps.read_namespaced_deployment("voting", APP_NS)
    assert (deployment.spec.replicas, deployment.status.ready_replicas) == (3, 3)

    apps.patch_namespaced_deployment_scale("voting", APP_NS, {"spec": {"replicas": 1}})
    assert len(pods_of(core, "voting-svc")) == 1
    assert apps.read_namespaced_deployment("voting", APP_NS).status.ready_replicas == 1

    apps.patch_namespaced_deployment_scale("voting", APP_NS, {"spec": {"replicas": 0}})
    assert pods_of(core, "voting-svc") == []
    scaled_down = apps.read_namespaced_deployment("voting", APP_NS)
    assert scaled_down.status.ready_replicas is None
    assert {c.type: c.status for c in scaled_down.status.conditions}["Available"] == "True"


def test_a_rollout_restart_replaces_every_pod(apps: client.AppsV1Api, core: client.CoreV1Api) -> None:
    apps.patch_namespaced_deployment_scale("emoji", APP_NS, {"spec": {"replicas": 2}})
    before = names(pods_of(core, "emoji-svc"))

    restart(apps, "emoji")

    after = pods_of(core, "emoji-svc")
    assert len(after) == 2 and not names(after) & before
    assert all(p.metadata.annotations["kubectl.kubernetes.io/restartedAt"] for p in after)
    replicasets = {
        rs.metadata.annotations["deployment.kubernetes.io/revision"]: rs
        for rs in apps.list_namespaced_replica_set(APP_NS, label_selector="app=emoji-svc").items
    }
    assert (replicasets["1"].spec.replicas, replicasets["2"].spec.replicas) == (0, 2)
    deployment = apps.read_namespaced_deployment("emoji", APP_NS)
    assert deployment.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    assert deployment.metadata.generation == deployment.status.observed_generation
    assert deployment.status.updated_replicas == 2
    progressing = {c.type: c for c in deployment.status.conditions}["Progressing"]
    assert progressing.reason == "NewReplicaSetAvailable"


def test_deleting_an_owned_replicaset_brings_it_back(apps: client.AppsV1Api, core: client.CoreV1Api) -> None:
    [replicaset] = apps.list_namespaced_replica_set(APP_NS, label_selector="app=web-svc").items

    apps.delete_namespaced_replica_set(replicaset.metadata.name, APP_NS)

    [again] = apps.list_namespaced_replica_set(APP_NS, label_selector="app=web-svc").items
    assert again.metadata.uid != replicaset.metadata.uid
    assert len(pods_of(core, "web-svc")) == 1


def test_orphan_propagation_leaves_the_dependents(apps: client.AppsV1Api, core: client.CoreV1Api) -> None:
    apps.delete_namespaced_deployment("web", APP_NS, propagation_policy="Orphan")

    [replicaset] = apps.list_namespaced_replica_set(APP_NS, label_selector="app=web-svc").items
    assert not replicaset.metadata.owner_references
    assert len(pods_of(core, "web-svc")) == 1


# ---------------------------------------------------------------- readiness, endpoints


def test_endpoints_follow_the_ready_pods(core: client.CoreV1Api, apps: client.AppsV1Api) -> None:
    [pod] = pods_of(core, "voting-svc")
    endpoints = core.read_namespaced_endpoints("voting-svc", APP_NS)
    [subset] = endpoints.subsets
    assert [a.ip for a in subset.addresses] == [pod.status.pod_ip]
    assert subset.addresses[0].target_ref.name == pod.metadata.name
    assert sorted((p.name, p.port) for p in subset.ports) == [("grpc", 8080), ("prom", 8801)]

    apps.patch_namespaced_deployment_scale("voting", APP_NS, {"spec": {"replicas": 0}})

    assert core.read_namespaced_endpoints("voting-svc", APP_NS).subsets in (None, [])


def test_unready_pods_show_in_deployment_status_and_endpoints(
    playground: Playground, core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    # Test hook: the kubelet leaves pods whose name starts with this prefix not Ready.
    playground.api.controller.unready_pods.add((APP_NS, "web-"))

    restart(apps, "web")

    [pod] = pods_of(core, "web-svc")
    assert pod.status.phase == "Running"
    assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "False"
    assert not pod.status.container_statuses[0].ready
    deployment = apps.read_namespaced_deployment("web", APP_NS)
    assert not deployment.status.ready_replicas
    assert deployment.status.unavailable_replicas == 1
    assert {c.type: c.status for c in deployment.status.conditions}["Available"] == "False"
    [subset] = core.read_namespaced_endpoints("web-svc", APP_NS).subsets
    assert subset.addresses is None
    assert [a.ip for a in subset.not_ready_addresses] == [pod.status.pod_ip]


# ---------------------------------------------------------------- sidecar injection


def test_pods_of_an_unlabelled_namespace_have_no_sidecar(core: client.CoreV1Api) -> None:
    for pod in core.list_namespaced_pod(APP_NS).items:
        assert [c.name for c in pod.spec.containers] != ["istio-proxy"]
        assert len(pod.spec.containers) == 1
        assert "sidecar.istio.io/status" not in (pod.metadata.annotations or {})


def test_labelling_then_restarting_injects_istio_proxy(
    core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    enable_injection(core)
    # Labelling alone changes no running pod: injection happens when a pod is created.
    assert len(pods_of(core, "web-svc")[0].spec.containers) == 1

    restart(apps, "web")

    [pod] = pods_of(core, "web-svc")
    assert [c.name for c in pod.spec.containers] == ["web-svc", "istio-proxy"]
    assert [c.name for c in pod.spec.init_containers] == ["istio-init"]
    proxy = pod.spec.containers[1]
    assert proxy.image == "docker.io/istio/proxyv2:1.24.2"
    status = json.loads(pod.metadata.annotations["sidecar.istio.io/status"])
    assert status["containers"] == ["istio-proxy"]
    assert status["initContainers"] == ["istio-init"]
    assert pod.metadata.labels["security.istio.io/tlsMode"] == "istio"
    # READY 2/2, as `kubectl get pods` shows in the write-up.
    assert [s.ready for s in pod.status.container_statuses] == [True, True]
    assert pod.status.init_container_statuses[0].state.terminated.reason == "Completed"


def test_a_pod_can_opt_out_of_injection(core: client.CoreV1Api) -> None:
    enable_injection(core)

    pod = core.create_namespaced_pod(
        APP_NS,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="debug", annotations={"sidecar.istio.io/inject": "false"}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="sh", image="busybox:1.36")]),
        ),
    )

    assert [c.name for c in pod.spec.containers] == ["sh"]


def test_no_injection_without_istiod(bare: ApiClient) -> None:
    core = client.CoreV1Api(bare)
    assert "istio-system" not in {n.metadata.name for n in core.list_namespace().items}
    enable_injection(core)

    pod = core.create_namespaced_pod(
        APP_NS,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="plain"),
            spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="nginx:1.27")]),
        ),
    )

    assert [c.name for c in pod.spec.containers] == ["app"]
    assert "sidecar.istio.io/status" not in (pod.metadata.annotations or {})
    assert core.read_namespaced_pod("plain", APP_NS).status.phase == "Running"


def test_no_injection_while_istiod_is_scaled_down(core: client.CoreV1Api, apps: client.AppsV1Api) -> None:
    enable_injection(core)
    apps.patch_namespaced_deployment_scale("istiod", "istio-system", {"spec": {"replicas": 0}})

    restart(apps, "web")

    assert len(pods_of(core, "web-svc")[0].spec.containers) == 1


# ---------------------------------------------------------------- jobs


def test_a_job_runs_to_completion(kube: ApiClient, core: client.CoreV1Api) -> None:
    batch = client.BatchV1Api(kube)

    batch.create_namespaced_job("default", job("hello"))

    done = batch.read_namespaced_job("hello", "default")
    assert done.status.succeeded == 1
    assert not done.status.failed and not done.status.active
    assert done.status.start_time and done.status.completion_time
    assert {c.type: c.status for c in done.status.conditions}["Complete"] == "True"
    [pod] = core.list_namespaced_pod("default", label_selector="job-name=hello").items
    assert pod.status.phase == "Succeeded"
    assert pod.status.container_statuses[0].state.terminated.exit_code == 0
    assert core.read_namespaced_pod_log(pod.metadata.name, "default") == ""


def test_a_job_told_to_fail_fails_with_its_log(playground: Playground, kube: ApiClient) -> None:
    batch = client.BatchV1Api(kube)
    core = client.CoreV1Api(kube)
    playground.api.controller.failing_jobs[("default", "doomed")] = "Error: no route to host\n"

    batch.create_namespaced_job("default", job("doomed"))

    failed = batch.read_namespaced_job("doomed", "default")
    # backoffLimit 1: the first pod and one retry.
    assert failed.status.failed == 2
    assert not failed.status.succeeded
    conditions = {c.type: c for c in failed.status.conditions}
    assert conditions["Failed"].status == "True"
    assert conditions["Failed"].reason == "BackoffLimitExceeded"
    pods = core.list_namespaced_pod("default", label_selector="job-name=doomed").items
    assert len(pods) == 2
    for pod in pods:
        assert pod.status.phase == "Failed"
        assert pod.status.container_statuses[0].state.terminated.exit_code == 1
        assert core.read_namespaced_pod_log(pod.metadata.name, "default") == "Error: no route to host\n"


def test_an_istioctl_job_installs_istio(bare: ApiClient) -> None:
    batch = client.BatchV1Api(bare)
    core = client.CoreV1Api(bare)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="istio-system")))
    args = ["install", "--set", "profile=demo", "-y"]

    batch.create_namespaced_job("istio-system", job("install", "docker.io/istio/istioctl:1.24.2", args))

    done = batch.read_namespaced_job("install", "istio-system")
    assert done.status.succeeded == 1
    [pod] = core.list_namespaced_pod("istio-system", label_selector="job-name=install").items
    log = core.read_namespaced_pod_log(pod.metadata.name, "istio-system")
    assert log.splitlines()[-1] == "✔ Installation complete"
    istiod = client.AppsV1Api(bare).read_namespaced_deployment("istiod", "istio-system")
    assert istiod.status.ready_replicas == 1
    groups = {g.name for g in client.ApisApi(bare).get_api_versions().groups}
    assert "networking.istio.io" in groups
