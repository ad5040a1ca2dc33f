"""Sidecar injection on the write-up's cluster: label, rollout restart, sidecar report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from kubernetes.client import (
    V1Container,
    V1ContainerStatus,
    V1ObjectMeta,
    V1Pod,
    V1PodSpec,
    V1PodStatus,
)

from mesh.errors import NotFound
from mesh.injection import (
    has_sidecar,
    pod_sidecar,
    restart_workloads,
    set_injection,
    sidecar_report,
)
from mesh.kube import Kube, for_url
from playground.runner import Playground

APP = "emojivoto-istio"
WORKLOADS = ["emoji", "vote-bot", "voting", "web"]


@pytest.fixture
def mesh_kube(playground: Playground) -> Iterator[Kube]:
    kube = for_url(playground.url)
    yield kube
    kube.close()


def writes(pg: Playground) -> list[tuple[str, str, str, object]]:
    return [
        (r.method, r.path, r.content_type, json.loads(r.body) if r.body else None)
        for r in pg.hooks.requests
        if r.method != "GET"
    ]


def namespace_labels(kube: Kube, name: str) -> dict[str, str]:
    meta = kube.core.read_namespace(name).metadata
    assert meta is not None
    return dict(meta.labels or {})


def test_before_injection_no_pod_has_a_sidecar(mesh_kube: Kube) -> None:
    report = sidecar_report(mesh_kube, APP)
    assert [w.name for w in report] == WORKLOADS
    for workload in report:
        assert len(workload.pods) == 1
        assert [(p.ready_text, p.has_sidecar, p.phase) for p in workload.pods] == [("1/1", False, "Running")]
        assert workload.without_sidecar == workload.pods
        assert not workload.all_injected


def test_inject_and_restart_gives_every_pod_a_sidecar(playground: Playground, mesh_kube: Kube) -> None:
    mesh_kube.core.patch_namespace(
        APP, {"metadata": {"labels": {"team": "emoji"}}}, _content_type="application/merge-patch+json"
    )
    playground.hooks.requests.clear()

    change = set_injection(mesh_kube, APP, True)

    assert change.changed and change.enabled
    assert writes(playground) == [
        (
            "PATCH",
            f"/api/v1/namespaces/{APP}",
            "application/merge-patch+json",
            {"metadata": {"labels": {"istio-injection": "enabled"}}},
        )
    ]
    labels = namespace_labels(mesh_kube, APP)
    assert labels["istio-injection"] == "enabled"
    assert labels["team"] == "emoji"
    assert labels["kubernetes.io/metadata.name"] == APP
    # Running pods keep their old spec until they are replaced.
    assert not any(w.all_injected for w in sidecar_report(mesh_kube, APP))

    playground.hooks.requests.clear()
    at = datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)
    restart = restart_workloads(mesh_kube, APP, at=at)

    assert restart.restarted == tuple(WORKLOADS) and restart.skipped_paused == ()
    patch = {
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {"kubectl.kubernetes.io/restartedAt": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
                }
            }
        }
    }
    assert writes(playground) == [
        (
            "PATCH",
            f"/apis/apps/v1/namespaces/{APP}/deployments/{name}",
            "application/strategic-merge-patch+json",
            patch,
        )
        for name in WORKLOADS
    ]
    report = sidecar_report(mesh_kube, APP)
    assert [w.name for w in report] == WORKLOADS
    for workload in report:
        assert workload.all_injected
        assert [(p.ready_text, p.has_sidecar) for p in workload.pods] == [("2/2", True)]


def test_uninject_and_restart_removes_the_sidecars(playground: Playground, mesh_kube: Kube) -> None:
    set_injection(mesh_kube, APP, True)
    restart_workloads(mesh_kube, APP, at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC))

    change = set_injection(mesh_kube, APP, False)
    restart_workloads(mesh_kube, APP, at=datetime(2026, 3, 1, 13, 0, tzinfo=UTC))

    assert change.changed and not change.enabled
    assert "istio-injection" not in namespace_labels(mesh_kube, APP)
    for workload in sidecar_report(mesh_kube, APP):
        assert [(p.ready_text, p.has_sidecar) for p in workload.pods] == [("1/1", False)]


def test_setting_the_label_again_changes_nothing(playground: Playground, mesh_kube: Kube) -> None:
    set_injection(mesh_kube, APP, True)
    playground.hooks.requests.clear()
    assert not set_injection(mesh_kube, APP, True).changed
    assert not set_injection(mesh_kube, "default", False).changed
    assert writes(playground) == []


def test_paused_deployments_are_skipped(playground: Playground, mesh_kube: Kube) -> None:
    mesh_kube.apps.patch_namespaced_deployment(
        "vote-bot", APP, {"spec": {"paused": True}}, _content_type="application/merge-patch+json"
    )
    restart = restart_workloads(mesh_kube, APP)
    assert restart.restarted == ("emoji", "voting", "web")
    assert restart.skipped_paused == ("vote-bot",)


def test_missing_namespace_is_not_found_and_nothing_changes(playground: Playground, mesh_kube: Kube) -> None:
    playground.hooks.requests.clear()
    for call in (
        lambda: set_injection(mesh_kube, "emojivoto", True),
        lambda: restart_workloads(mesh_kube, "emojivoto"),
        lambda: sidecar_report(mesh_kube, "emojivoto"),
    ):
        with pytest.raises(NotFound, match=r"^namespace emojivoto does not exist$"):
            call()
    assert writes(playground) == []


# ----------------------------------------------------------------- pure: what counts as a sidecar


def pod(
    containers: list[V1Container],
    init: list[V1Container] | None = None,
    annotations: dict[str, str] | None = None,
    ready: dict[str, bool] | None = None,
) -> V1Pod:
    ready = ready or {}

    def status(c: V1Container) -> V1ContainerStatus:
        return V1ContainerStatus(
            name=c.name, image=c.image or "", image_id="", ready=ready.get(c.name, True), restart_count=0
        )

    return V1Pod(
        metadata=V1ObjectMeta(name="web-1", annotations=annotations),
        spec=V1PodSpec(containers=containers, init_containers=init),
        status=V1PodStatus(
            phase="Running",
            container_statuses=[status(c) for c in containers],
            init_container_statuses=[status(c) for c in init or []],
        ),
    )


APP_CONTAINER = V1Container(name="web-svc", image="buoyantio/emojivoto-web:v11")


def test_native_sidecar_counts_as_sidecar_and_in_ready() -> None:
    native = V1Container(name="istio-proxy", image="istio/proxyv2:1.27.0", restart_policy="Always")
    init = V1Container(name="istio-validation", image="istio/proxyv2:1.27.0")
    seen = pod([APP_CONTAINER], [init, native], ready={"istio-proxy": False})
    assert has_sidecar(seen)
    assert pod_sidecar(seen).ready_text == "1/2"


def test_plain_init_container_named_istio_proxy_is_not_a_sidecar() -> None:
    finished = V1Container(name="istio-proxy", image="istio/proxyv2:1.27.0")
    seen = pod([APP_CONTAINER], [finished])
    assert not has_sidecar(seen)
    assert pod_sidecar(seen).ready_text == "1/1"


def test_injector_status_annotation_counts_as_sidecar() -> None:
    seen = pod([APP_CONTAINER], annotations={"sidecar.istio.io/status": '{"containers":["istio-proxy"]}'})
    assert has_sidecar(seen)
