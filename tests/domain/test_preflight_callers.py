"""The pre-flight names callers without a sidecar by workload, as Istio's metrics do, and counts
the rest past a few: it is one line of a chat message, whatever the namespace's size."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import kubernetes.client

from domain.preflight import preflight
from mesh.faults import FaultSpec
from mesh.kube import for_url
from mesh.virtualservices import plan_fault, workload_of
from playground.runner import Playground

NS = "emojivoto-istio"


def pod(
    name: str, *, owner: tuple[str, str] | None = None, template_hash: str | None = None
) -> kubernetes.client.V1Pod:
    owners = (
        [kubernetes.client.V1OwnerReference(api_version="apps/v1", kind=owner[0], name=owner[1], uid="u")]
        if owner
        else None
    )
    labels = {"pod-template-hash": template_hash} if template_hash else None
    return kubernetes.client.V1Pod(
        metadata=kubernetes.client.V1ObjectMeta(name=name, owner_references=owners, labels=labels)
    )


def test_a_pod_is_named_by_the_workload_that_owns_it() -> None:
    deployment = pod(
        "web-869b5547cb-898rj", owner=("ReplicaSet", "web-869b5547cb"), template_hash="869b5547cb"
    )
    assert workload_of(deployment) == "web"
    assert workload_of(pod("db-0", owner=("StatefulSet", "db"))) == "db"
    assert workload_of(pod("debug")) == "debug", "a bare pod is its own workload"
    # A ReplicaSet of its own (no Deployment above it) keeps its name.
    assert workload_of(pod("rs-abcde", owner=("ReplicaSet", "rs"))) == "rs"


def test_many_sidecarless_callers_are_named_up_to_a_few_then_counted(playground: Playground) -> None:
    kube = for_url(playground.url)
    for n in range(10):
        name = f"caller-{n:02d}"
        kube.apps.create_namespaced_deployment(
            NS,
            {
                "metadata": {"name": name},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "curl", "image": "curlimages/curl:8.8.0"}]},
                    },
                },
            },
        )
    plan = plan_fault(
        kube,
        namespace=NS,
        service="web-svc",
        spec=FaultSpec(kind="abort", percentage=50.0, http_status=500),
        experiment_id="exp-dry-run",
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
    )
    [warning] = [w for w in preflight(kube, None, plan) if "without a sidecar" in w]
    named = warning.split(": ", 1)[1]
    # The write-up's four workloads and the ten callers, two pods each: 14 names, 8 shown.
    assert (
        named
        == "caller-00, caller-01, caller-02, caller-03, caller-04, caller-05, caller-06, caller-07 and 6 more"
    )
    kube.close()
