"""Faults in and out of VirtualServices against the playground's API server, read back through the
official client. The seed is the write-up's cluster: emojivoto in `emojivoto-istio`, Istio installed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import kubernetes.client
import pytest

from mesh import virtualservices
from mesh.errors import Conflict, NotFound, Unavailable
from mesh.faults import ANNOTATION, FaultSpec, abort_fault, delay_fault
from mesh.kube import Kube
from mesh.virtualservices import (
    AppliedFault,
    MarkedFault,
    apply_fault,
    clear_fault,
    list_marked_faults,
    plan_fault,
    sidecarless_callers,
)
from playground.runner import Playground
from tests.conftest import kube_client_for

NS = "emojivoto-istio"
GROUP, VERSION, PLURAL = "networking.istio.io", "v1", "virtualservices"
EXPIRES = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
ABORT_500_AT_50 = abort_fault(50, http_status=500)
DELAY_3S = delay_fault(timedelta(seconds=3), 100, max_delay=timedelta(minutes=5))

# The write-up's Gateway and VirtualService, as it applies them (networking.istio.io/v1alpha3).
SEED_GATEWAY: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1alpha3",
    "kind": "Gateway",
    "metadata": {"name": "emojivoto-gateway", "namespace": NS},
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
SEED_VIRTUAL_SERVICE: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1alpha3",
    "kind": "VirtualService",
    "metadata": {"name": "emojivoto", "namespace": NS},
    "spec": {
        "hosts": ["emoji-istio.test.net"],
        "gateways": ["emojivoto-gateway"],
        "http": [
            {
                "match": [{"uri": {"prefix": "/"}}],
                "route": [{"destination": {"host": "web-svc", "port": {"number": 80}}}],
            }
        ],
    },
}
MESH_VIRTUAL_SERVICE: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "web-svc", "namespace": NS, "annotations": {"owner": "team-web"}},
    "spec": {
        "hosts": ["web-svc"],
        "http": [{"name": "all", "route": [{"destination": {"host": "web-svc"}}], "timeout": "5s"}],
    },
}


@pytest.fixture
def cluster(playground: Playground) -> Iterator[Kube]:
    kube = Kube(kube_client_for(playground))
    yield kube
    kube.close()


@pytest.fixture
def seeded(cluster: Kube) -> Kube:
    """The write-up's ingress routing: Gateway + VirtualService `emojivoto` → web-svc:80."""
    cluster.custom.create_namespaced_custom_object(GROUP, "v1alpha3", NS, "gateways", SEED_GATEWAY)
    cluster.custom.create_namespaced_custom_object(GROUP, "v1alpha3", NS, PLURAL, SEED_VIRTUAL_SERVICE)
    return cluster


def read_vs(kube: Kube, name: str) -> dict[str, Any]:
    obj = kube.custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name)
    assert isinstance(obj, dict)
    return obj


def vs_names(kube: Kube) -> list[str]:
    listed = kube.custom.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)
    assert isinstance(listed, dict)
    return sorted(item["metadata"]["name"] for item in listed["items"])


def inject(
    kube: Kube, experiment: str, spec: FaultSpec = ABORT_500_AT_50, service: str = "web-svc"
) -> AppliedFault:
    plan = plan_fault(
        kube, namespace=NS, service=service, spec=spec, experiment_id=experiment, expires_at=EXPIRES
    )
    return apply_fault(kube, plan)


def patches_to(pg: Playground, name: str) -> int:
    return sum(1 for r in pg.hooks.writes() if r.method == "PATCH" and r.path.endswith(f"/{PLURAL}/{name}"))


# ------------------------------------------------------------------------------ the seed


def test_seed_abort_then_delay_then_clear_restores_the_virtualservice(seeded: Kube) -> None:
    original = read_vs(seeded, "emojivoto")

    applied = inject(seeded, "exp-abort")
    assert [(c.vs_name, c.created, c.route_names) for c in applied.changes] == [
        ("emojivoto", False, ["meshbot-exp-abort"])
    ]
    http = read_vs(seeded, "emojivoto")["spec"]["http"]
    # The write-up's own faulted VirtualService, with the fault in a route of its own in front.
    assert http == [
        {
            "name": "meshbot-exp-abort",
            "match": [{"uri": {"prefix": "/"}}],
            "route": [{"destination": {"host": "web-svc", "port": {"number": 80}}}],
            "fault": {"abort": {"httpStatus": 500, "percentage": {"value": 50}}},
        },
        original["spec"]["http"][0],
    ]

    inject(seeded, "exp-delay", DELAY_3S)
    http = read_vs(seeded, "emojivoto")["spec"]["http"]
    assert [r.get("name") for r in http] == ["meshbot-exp-delay", "meshbot-exp-abort", None]
    assert http[0]["fault"] == {"delay": {"fixedDelay": "3s", "percentage": {"value": 100}}}
    assert http[0]["match"] == [{"uri": {"prefix": "/"}}]

    first = clear_fault(seeded, namespace=NS, experiment_id="exp-abort")
    second = clear_fault(seeded, namespace=NS, experiment_id="exp-delay")
    assert [(c.vs_name, c.removed_routes, c.deleted) for c in first.cleared] == [
        ("emojivoto", ["meshbot-exp-abort"], False)
    ]
    assert [c.removed_routes for c in second.cleared] == [["meshbot-exp-delay"]]
    restored = read_vs(seeded, "emojivoto")
    assert restored["spec"] == original["spec"]
    assert restored["metadata"].get("annotations") == original["metadata"].get("annotations")
    assert "annotations" not in restored["metadata"]


def test_the_plan_reads_only_and_warns_about_the_gateway_binding(
    seeded: Kube, playground: Playground
) -> None:
    writes_before = len(playground.hooks.writes())
    plan = plan_fault(
        seeded, namespace=NS, service="web-svc", spec=ABORT_500_AT_50, experiment_id="e1", expires_at=EXPIRES
    )
    assert len(playground.hooks.writes()) == writes_before
    (change,) = plan.changes
    assert change.spec_before == SEED_VIRTUAL_SERVICE["spec"]
    assert change.patch[0]["op"] == "test"
    assert any("bound to gateway emojivoto-gateway only" in w for w in plan.warnings)


def test_writes_are_json_patches_that_test_the_resource_version(seeded: Kube, playground: Playground) -> None:
    version = read_vs(seeded, "emojivoto")["metadata"]["resourceVersion"]
    inject(seeded, "exp-1")
    (patch,) = [r for r in playground.hooks.writes() if r.method == "PATCH"]
    assert patch.content_type.startswith("application/json-patch+json")
    assert "fieldValidation=Strict" in patch.query
    assert '"op":"test"' in patch.body.replace(" ", "")
    assert f'"value":"{version}"' in patch.body.replace(" ", "")


def test_header_matches_limit_the_fault_to_test_traffic(seeded: Kube) -> None:
    inject(seeded, "exp-1", abort_fault(100, http_status=503, headers={"X-User": "alice"}))
    fault_route = read_vs(seeded, "emojivoto")["spec"]["http"][0]
    assert fault_route["match"] == [{"uri": {"prefix": "/"}, "headers": {"x-user": {"exact": "alice"}}}]


# ---------------------------------------------------------------- meshbot-owned VirtualService


def test_a_service_without_virtualservice_gets_one_owned_by_meshbot(
    cluster: Kube, playground: Playground
) -> None:
    applied = inject(cluster, "exp-1", abort_fault(10, grpc_status="unavailable"), service="voting-svc")
    assert [(c.vs_name, c.created) for c in applied.changes] == [("meshbot-voting-svc", True)]
    (create,) = [r for r in playground.hooks.writes() if r.method == "POST"]
    assert "fieldValidation=Strict" in create.query
    owned = read_vs(cluster, "meshbot-voting-svc")
    assert owned["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "meshbot"}
    assert owned["spec"]["hosts"] == ["voting-svc"]
    assert owned["spec"]["http"][0]["fault"] == {
        "abort": {"grpcStatus": "UNAVAILABLE", "percentage": {"value": 10}}
    }
    assert owned["spec"]["http"][1] == {
        "name": "meshbot-default",
        "route": [{"destination": {"host": "voting-svc"}}],
    }

    report = clear_fault(cluster, namespace=NS, experiment_id="exp-1")
    assert [(c.vs_name, c.deleted) for c in report.cleared] == [("meshbot-voting-svc", True)]
    assert vs_names(cluster) == []


def test_a_second_fault_on_the_service_patches_the_meshbot_virtualservice(cluster: Kube) -> None:
    inject(cluster, "exp-1", service="voting-svc")
    second = inject(cluster, "exp-2", DELAY_3S, service="voting-svc")
    assert [(c.vs_name, c.created) for c in second.changes] == [("meshbot-voting-svc", False)]
    assert vs_names(cluster) == ["meshbot-voting-svc"]
    names = [r["name"] for r in read_vs(cluster, "meshbot-voting-svc")["spec"]["http"]]
    assert names == ["meshbot-exp-2", "meshbot-exp-1", "meshbot-default"]

    first_out = clear_fault(cluster, namespace=NS, experiment_id="exp-1")
    assert [c.deleted for c in first_out.cleared] == [False]
    assert vs_names(cluster) == ["meshbot-voting-svc"]
    last_out = clear_fault(cluster, namespace=NS, experiment_id="exp-2")
    assert [c.deleted for c in last_out.cleared] == [True]
    assert vs_names(cluster) == []


# ------------------------------------------------------------------ between apply and clear


def test_a_route_someone_adds_meanwhile_survives_the_clear(seeded: Kube) -> None:
    inject(seeded, "exp-1")
    theirs = {
        "name": "health",
        "match": [{"uri": {"exact": "/health"}}],
        "route": [{"destination": {"host": "web-svc", "port": {"number": 80}}}],
    }
    seeded.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        NS,
        PLURAL,
        "emojivoto",
        [{"op": "add", "path": "/spec/http/0", "value": theirs}],
        _content_type="application/json-patch+json",
    )
    report = clear_fault(seeded, namespace=NS, experiment_id="exp-1")
    assert [c.removed_routes for c in report.cleared] == [["meshbot-exp-1"]]
    assert read_vs(seeded, "emojivoto")["spec"]["http"] == [theirs, *SEED_VIRTUAL_SERVICE["spec"]["http"]]


def test_a_virtualservice_deleted_meanwhile_is_reported_not_raised(seeded: Kube) -> None:
    applied = inject(seeded, "exp-1")
    seeded.custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "emojivoto")
    report = clear_fault(seeded, namespace=NS, experiment_id="exp-1", vs_names=applied.vs_names)
    assert report.vanished == ["emojivoto"]
    assert report.cleared == []
    assert not report.found_nothing


def test_clearing_an_unknown_experiment_finds_nothing(seeded: Kube) -> None:
    report = clear_fault(seeded, namespace=NS, experiment_id="exp-none")
    assert report.found_nothing


def test_other_experiments_survive_a_clear(seeded: Kube) -> None:
    inject(seeded, "exp-1")
    inject(seeded, "exp-2", DELAY_3S)
    clear_fault(seeded, namespace=NS, experiment_id="exp-2")
    names = [r.get("name") for r in read_vs(seeded, "emojivoto")["spec"]["http"]]
    assert names == ["meshbot-exp-1", None]
    assert [f.experiment_id for f in list_marked_faults(seeded, NS)] == ["exp-1"]


# ------------------------------------------------------------------------------ conflicts


def test_a_conflict_is_retried_after_re_reading(seeded: Kube, playground: Playground) -> None:
    playground.hooks.fail_next(r"/virtualservices/emojivoto$", 1, code=409, method="PATCH")
    applied = inject(seeded, "exp-1")
    assert applied.attempts == 2
    assert patches_to(playground, "emojivoto") == 2
    assert read_vs(seeded, "emojivoto")["spec"]["http"][0]["name"] == "meshbot-exp-1"


def test_an_edit_after_planning_fails_the_test_and_is_re_planned(seeded: Kube) -> None:
    plan = plan_fault(
        seeded, namespace=NS, service="web-svc", spec=ABORT_500_AT_50, experiment_id="e1", expires_at=EXPIRES
    )
    seeded.custom.patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, "emojivoto", {"metadata": {"labels": {"team": "web"}}}
    )
    applied = apply_fault(seeded, plan)
    assert applied.attempts == 2
    after = read_vs(seeded, "emojivoto")
    assert after["metadata"]["labels"] == {"team": "web"}
    assert after["spec"]["http"][0]["name"] == "meshbot-e1"


def test_conflicts_beyond_the_retry_budget_raise_and_change_nothing(
    seeded: Kube, playground: Playground
) -> None:
    before = read_vs(seeded, "emojivoto")
    playground.hooks.fail_next(
        r"/virtualservices/emojivoto$", virtualservices.MAX_ATTEMPTS, code=409, method="PATCH"
    )
    with pytest.raises(Conflict, match="kept changing") as raised:
        inject(seeded, "exp-1")
    assert "nothing was changed" in str(raised.value)
    assert patches_to(playground, "emojivoto") == virtualservices.MAX_ATTEMPTS
    assert read_vs(seeded, "emojivoto") == before


# --------------------------------------------------------------------------- half-way failure


def test_a_failure_half_way_undoes_the_virtualservices_already_changed(
    seeded: Kube, playground: Playground
) -> None:
    seeded.custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, MESH_VIRTUAL_SERVICE)
    before = {name: read_vs(seeded, name) for name in ("emojivoto", "web-svc")}
    playground.hooks.fail_next(r"/virtualservices/web-svc$", 1, code=500, method="PATCH")

    with pytest.raises(Unavailable) as raised:
        inject(seeded, "exp-1")

    message = str(raised.value)
    assert "the fault was not injected" in message
    assert "VirtualService emojivoto were undone: nothing was changed" in message
    for name, obj in before.items():
        after = read_vs(seeded, name)
        assert after["spec"] == obj["spec"], name
        assert after["metadata"].get("annotations") == obj["metadata"].get("annotations"), name
    assert patches_to(playground, "emojivoto") == 2  # the fault, then its undo


def test_both_virtualservices_routing_to_the_service_get_the_fault(seeded: Kube) -> None:
    seeded.custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, MESH_VIRTUAL_SERVICE)
    applied = inject(seeded, "exp-1")
    assert applied.vs_names == ["emojivoto", "web-svc"]
    assert any("has timeout" in w for w in applied.warnings)
    mesh = read_vs(seeded, "web-svc")
    assert mesh["spec"]["http"][0]["name"] == "meshbot-exp-1"
    assert "timeout" not in mesh["spec"]["http"][0]
    assert mesh["metadata"]["annotations"]["owner"] == "team-web"

    clear_fault(seeded, namespace=NS, experiment_id="exp-1")
    restored = read_vs(seeded, "web-svc")
    assert restored["spec"] == MESH_VIRTUAL_SERVICE["spec"]
    assert restored["metadata"]["annotations"] == {"owner": "team-web"}


def test_an_api_server_that_hangs_is_reported_unavailable(seeded: Kube, playground: Playground) -> None:
    quick = Kube(seeded.api_client, timeout=0.3)
    # urllib3 retries idempotent reads itself, so every attempt must hang.
    playground.hooks.hang_next(r"/virtualservices$", 10, seconds=1, method="GET")
    with pytest.raises(Unavailable, match="unreachable"):
        plan_fault(
            quick,
            namespace=NS,
            service="web-svc",
            spec=ABORT_500_AT_50,
            experiment_id="e",
            expires_at=EXPIRES,
        )


def test_a_write_that_times_out_is_reported_with_what_happens_if_it_lands_late(
    seeded: Kube, playground: Playground
) -> None:
    quick = Kube(seeded.api_client, timeout=0.3)
    playground.hooks.hang_next(r"/virtualservices/emojivoto$", 1, seconds=0.5, method="PATCH")
    with pytest.raises(Unavailable) as raised:
        inject(quick, "exp-1")
    assert f"the Kubernetes API server at {playground.url} is unreachable (ReadTimeoutError)" in str(
        raised.value
    )
    assert "If the unanswered write to emojivoto still lands, the reaper removes it" in str(raised.value)
    time.sleep(0.4)  # past the hang: like a real API server, the received write still lands
    landed = read_vs(seeded, "emojivoto")
    # What makes that safe: the late write carries the expiry the reaper acts on.
    assert [f.experiment_id for f in list_marked_faults(seeded, NS)] == ["exp-1"]
    assert landed["spec"]["http"][0]["name"] == "meshbot-exp-1"


def test_clear_tries_every_virtualservice_before_raising(seeded: Kube, playground: Playground) -> None:
    seeded.custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, MESH_VIRTUAL_SERVICE)
    inject(seeded, "exp-1")
    playground.hooks.fail_next(r"/virtualservices/emojivoto$", 1, code=503, method="PATCH")
    with pytest.raises(Unavailable) as raised:
        clear_fault(seeded, namespace=NS, experiment_id="exp-1")
    assert "experiment exp-1 is still in VirtualService emojivoto" in str(raised.value)
    assert "it was removed from web-svc" in str(raised.value)
    assert read_vs(seeded, "web-svc")["spec"] == MESH_VIRTUAL_SERVICE["spec"]
    assert [f.vs_name for f in list_marked_faults(seeded, NS)] == ["emojivoto"]


# ------------------------------------------------------------------------------ reading


def test_a_missing_service_is_not_found_and_the_existing_ones_are_listed(cluster: Kube) -> None:
    with pytest.raises(NotFound) as raised:
        plan_fault(
            cluster, namespace=NS, service="web", spec=ABORT_500_AT_50, experiment_id="e", expires_at=EXPIRES
        )
    assert str(raised.value) == (
        "there is no service web in namespace emojivoto-istio; services there: emoji-svc, voting-svc, web-svc"
    )


def test_a_missing_namespace_says_it_has_no_services(cluster: Kube) -> None:
    with pytest.raises(NotFound, match="nowhere; it has no services"):
        plan_fault(
            cluster,
            namespace="nowhere",
            service="web",
            spec=ABORT_500_AT_50,
            experiment_id="e",
            expires_at=EXPIRES,
        )


def test_list_marked_faults_reads_the_annotations_across_namespaces(seeded: Kube) -> None:
    inject(seeded, "exp-1")
    later = datetime(2031, 1, 1, tzinfo=UTC)
    plan = plan_fault(
        seeded, namespace=NS, service="emoji-svc", spec=DELAY_3S, experiment_id="exp-2", expires_at=later
    )
    apply_fault(seeded, plan)
    expected = [
        MarkedFault(NS, "emojivoto", "exp-1", EXPIRES, ("meshbot-exp-1",)),
        MarkedFault(NS, "meshbot-emoji-svc", "exp-2", later, ("meshbot-exp-2",)),
    ]
    assert list_marked_faults(seeded) == expected
    assert list_marked_faults(seeded, NS) == expected
    assert list_marked_faults(seeded, "default") == []
    assert expected[0].expired(datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert not expected[1].expired(datetime(2030, 6, 1, tzinfo=UTC))


def test_the_annotation_is_the_only_bookkeeping(seeded: Kube) -> None:
    before = read_vs(seeded, "emojivoto")["metadata"]
    inject(seeded, "exp-1")
    after = read_vs(seeded, "emojivoto")["metadata"]
    assert set(after.get("annotations", {})) == {ANNOTATION}
    assert after.get("labels") == before.get("labels")


def test_sidecarless_callers_are_the_running_pods_without_istio_proxy(cluster: Kube) -> None:
    callers = sidecarless_callers(cluster, NS)
    # Named by workload, as Istio's metrics name them, not by pod.
    assert callers == ["emoji", "vote-bot", "voting", "web"]

    cluster.core.patch_namespace(NS, {"metadata": {"labels": {"istio-injection": "enabled"}}})
    pod = kubernetes.client.V1Pod(
        metadata=kubernetes.client.V1ObjectMeta(name="meshed-caller", namespace=NS),
        spec=kubernetes.client.V1PodSpec(
            containers=[kubernetes.client.V1Container(name="curl", image="curlimages/curl:8.8.0")]
        ),
    )
    created = cluster.core.create_namespaced_pod(NS, pod)
    assert created.spec is not None
    assert "istio-proxy" in [c.name for c in created.spec.containers]
    status = cluster.core.read_namespaced_pod("meshed-caller", NS).status
    assert status is not None and status.phase == "Running"
    assert "meshed-caller" not in sidecarless_callers(cluster, NS)
    assert sidecarless_callers(cluster, NS) == callers
