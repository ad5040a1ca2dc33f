"""`/mesh status` over the write-up's cluster, before and after its manual steps."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from mesh.errors import NotFound
from mesh.expose import expose
from mesh.injection import restart_workloads, set_injection
from mesh.kube import Kube, for_url
from mesh.overview import ExposedHost, NamespaceCoverage, exposed_hosts, mesh_overview
from playground.runner import Playground

APP = "emojivoto-istio"
HOST = "emoji-istio.test.net"


@pytest.fixture
def mesh_kube(playground: Playground) -> Iterator[Kube]:
    kube = for_url(playground.url)
    yield kube
    kube.close()


def test_overview_of_the_article_seed(mesh_kube: Kube) -> None:
    overview = mesh_overview(mesh_kube)

    plane = overview.control_plane
    assert plane.installed and plane.ready and plane.version == "1.24.2"
    assert [(c.name, c.ready_text) for c in plane.components] == [
        ("istiod", "1/1"),
        ("istio-egressgateway", "1/1"),
        ("istio-ingressgateway", "1/1"),
        ("grafana", "1/1"),
        ("istio-tracing", "1/1"),
        ("kiali", "1/1"),
        ("prometheus", "1/1"),
    ]
    assert [(c.name, c.version) for c in plane.components][:3] == [
        ("istiod", "1.24.2"),
        ("istio-egressgateway", "1.24.2"),
        ("istio-ingressgateway", "1.24.2"),
    ]
    assert plane.ingress is not None
    assert plane.ingress.external_addresses == ("172.2.0.201",)
    assert [(p.port, p.node_port) for p in plane.ingress.ports] == [
        (15020, 32553),
        (80, 30080),
        (443, 30820),
        (31400, 32112),
        (15443, 30203),
    ]
    # emojivoto-istio is not labelled yet, and nothing is exposed.
    assert overview.injection == ()
    assert overview.exposed == ()


def test_overview_after_the_write_up_steps(mesh_kube: Kube) -> None:
    set_injection(mesh_kube, APP, True)
    half_way = mesh_overview(mesh_kube)
    [coverage] = half_way.injection
    assert (coverage.namespace, coverage.coverage_text) == (APP, "0/4")
    assert [name.rsplit("-", 2)[0] for name in coverage.without_sidecar] == [
        "emoji",
        "vote-bot",
        "voting",
        "web",
    ]

    restart_workloads(mesh_kube, APP, at=datetime(2026, 3, 1, tzinfo=UTC))
    expose(mesh_kube, APP, "web-svc", HOST, name="emojivoto")
    overview = mesh_overview(mesh_kube)

    assert overview.injection == (NamespaceCoverage(APP, True, 4, 4, ()),)
    assert overview.exposed == (
        ExposedHost(HOST, APP, "emojivoto", (f"{APP}/emojivoto-gateway",), ("web-svc:80",), True),
    )


def test_one_namespace(mesh_kube: Kube) -> None:
    expose(mesh_kube, APP, "web-svc", HOST)
    overview = mesh_overview(mesh_kube, "default")
    assert overview.namespace == "default"
    assert overview.injection == (NamespaceCoverage("default", False, 0, 0, ()),)
    assert overview.exposed == ()

    mine = mesh_overview(mesh_kube, APP)
    assert [c.coverage_text for c in mine.injection] == ["0/4"]
    assert not mine.injection[0].injection_enabled
    assert [e.host for e in mine.exposed] == [HOST]

    with pytest.raises(NotFound, match="namespace emojivoto does not exist"):
        mesh_overview(mesh_kube, "emojivoto")


def test_overview_without_istio(make_playground: Callable[..., Playground]) -> None:
    kube = for_url(make_playground("article-bare").url)
    overview = mesh_overview(kube)
    assert not overview.control_plane.installed
    assert overview.control_plane.components == ()
    assert overview.control_plane.ingress is None
    assert overview.injection == ()
    assert overview.exposed == ()


def test_exposed_hosts_reads_hand_made_objects() -> None:
    def meta(name: str, namespace: str = APP) -> dict[str, object]:
        return {"name": name, "namespace": namespace}

    gateways = [
        {
            "kind": "Gateway",
            "metadata": meta("public", "istio-system"),
            "spec": {"servers": [{"hosts": ["shop/shop.test.net", "*/docs.test.net"]}]},
        }
    ]
    routes = [
        {
            "kind": "VirtualService",
            "metadata": meta("shop", "shop"),
            "spec": {
                "hosts": ["shop.test.net"],
                "gateways": ["istio-system/public", "mesh"],
                "http": [
                    {"route": [{"destination": {"host": "cart", "port": {"number": 8080}}}]},
                    {"route": [{"destination": {"host": "web"}}]},
                ],
            },
        },
        {
            "kind": "VirtualService",
            "metadata": meta("internal", "shop"),
            "spec": {"hosts": ["cart"], "http": [{"route": [{"destination": {"host": "cart"}}]}]},
        },
    ]
    assert exposed_hosts(gateways, routes) == (
        ExposedHost("docs.test.net", "istio-system", None, ("istio-system/public",), (), False),
        ExposedHost("shop.test.net", "shop", "shop", ("istio-system/public",), ("cart:8080", "web"), False),
    )
    assert [e.host for e in exposed_hosts(gateways, routes, "shop")] == ["shop.test.net"]


def _overview_calls(seed: str) -> tuple[int, int]:
    from playground import runner

    with runner.start(seed) as pg:
        kube = for_url(pg.url)
        try:
            pg.hooks.requests.clear()
            overview = mesh_overview(kube)
            return len(pg.hooks.requests), len(overview.injection)
        finally:
            kube.close()


def test_the_overview_makes_as_many_api_calls_for_six_namespaces_as_for_two() -> None:
    small, small_namespaces = _overview_calls("large:2x2")
    large, large_namespaces = _overview_calls("large:6x2")
    assert (small_namespaces, large_namespaces) == (2, 6)
    assert small == large


def test_the_json_pod_reading_agrees_with_the_typed_one(mesh_kube: Kube) -> None:
    # `status` reads pods as raw JSON for speed; the verbs that read one namespace use typed pods.
    from mesh.injection import has_sidecar, list_current_pods
    from mesh.overview import _raw_has_sidecar, _raw_pods

    set_injection(mesh_kube, "default", True)
    restart_workloads(mesh_kube, "default")
    typed = {(p.metadata.namespace, p.metadata.name): has_sidecar(p) for p in list_current_pods(mesh_kube)}
    raw = {
        (p["metadata"]["namespace"], p["metadata"]["name"]): _raw_has_sidecar(p) for p in _raw_pods(mesh_kube)
    }
    assert set(typed) <= set(raw)
    assert {k: raw[k] for k in typed} == typed
    assert any(typed.values()) and not all(typed.values())
