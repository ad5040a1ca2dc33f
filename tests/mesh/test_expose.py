"""Exposing emojivoto through the ingress gateway, as the write-up does by hand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import yaml

from mesh.errors import NotFound, Unavailable
from mesh.expose import (
    ExposeOptionError,
    ExposeUrl,
    HostTaken,
    expose,
    gateway_manifest,
    unexpose,
    virtualservice_manifest,
)
from mesh.kube import Kube, for_url
from playground import runner
from playground.runner import Playground
from tests.support import write_up

APP = "emojivoto-istio"
HOST = "emoji-istio.test.net"
GROUP = "networking.istio.io"

SEED_GATEWAY, SEED_ROUTE = write_up.GATEWAY, write_up.VIRTUAL_SERVICE
URLS = (
    ExposeUrl("http://emoji-istio.test.net/", "172.2.0.201", "load balancer 172.2.0.201"),
    ExposeUrl("http://emoji-istio.test.net:30080/", None, "node port 30080 on any node"),
)


@pytest.fixture
def mesh_kube(playground: Playground) -> Iterator[Kube]:
    kube = for_url(playground.url)
    yield kube
    kube.close()


def get(kube: Kube, plural: str, name: str, namespace: str = APP) -> dict[str, Any]:
    obj: dict[str, Any] = kube.custom.get_namespaced_custom_object(  # type: ignore[assignment]
        GROUP, "v1", namespace, plural, name
    )
    return obj


def istio_objects(kube: Kube) -> list[tuple[str, str, str, str]]:
    """Every Gateway and VirtualService with its resourceVersion: any change shows."""
    found = []
    for plural in ("gateways", "virtualservices"):
        listed: Any = kube.custom.list_custom_object_for_all_namespaces(GROUP, "v1", plural)
        for item in listed["items"]:
            meta = item["metadata"]
            found.append((plural, meta["namespace"], meta["name"], meta["resourceVersion"]))
    return sorted(found)


def apply_by_hand(kube: Kube, manifest: dict[str, Any]) -> None:
    """What a person's `kubectl apply` of the write-up's YAML leaves: no meshbot label."""
    plural = {"Gateway": "gateways", "VirtualService": "virtualservices"}[manifest["kind"]]
    version = manifest["apiVersion"].split("/")[1]
    kube.custom.create_namespaced_custom_object(GROUP, version, APP, plural, manifest)


@pytest.fixture(scope="module")
def refusing() -> Iterator[tuple[Playground, Kube]]:
    """One cluster for the requests that must be refused: none of them may change it."""
    with runner.start("article") as pg:
        kube = for_url(pg.url)
        yield pg, kube
        kube.close()


# ----------------------------------------------------------------- pure


def test_builders_reproduce_the_write_up() -> None:
    gateway = gateway_manifest("emojivoto-gateway", APP, HOST)
    route = virtualservice_manifest("emojivoto", APP, HOST, "emojivoto-gateway", "web-svc", 80)
    assert gateway["spec"] == SEED_GATEWAY["spec"]
    assert route["spec"] == SEED_ROUTE["spec"]
    for built, seed in ((gateway, SEED_GATEWAY), (route, SEED_ROUTE)):
        assert built["kind"] == seed["kind"]
        assert built["apiVersion"] == "networking.istio.io/v1"
        assert {k: built["metadata"][k] for k in ("name", "namespace")} == seed["metadata"]
        assert built["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "meshbot"}


# ----------------------------------------------------------------- expose


def test_expose_creates_the_write_up_objects_and_answers_with_urls(
    playground: Playground, mesh_kube: Kube
) -> None:
    exposure = expose(mesh_kube, APP, "web-svc", HOST, name="emojivoto")

    assert exposure.urls == URLS
    assert exposure.port == 80
    assert (exposure.gateway, exposure.virtual_service) == ("emojivoto-gateway", "emojivoto")
    assert exposure.written == (f"Gateway {APP}/emojivoto-gateway", f"VirtualService {APP}/emojivoto")
    gateway = get(mesh_kube, "gateways", "emojivoto-gateway")
    route = get(mesh_kube, "virtualservices", "emojivoto")
    assert gateway["spec"] == SEED_GATEWAY["spec"]
    assert route["spec"] == SEED_ROUTE["spec"]
    for obj in (gateway, route):
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "meshbot"
    # Written with strict field validation: a typo in a builder would fail loudly, not be pruned.
    assert all("fieldValidation=Strict" in r.query for r in playground.hooks.writes())


def test_default_names_come_from_the_host(mesh_kube: Kube) -> None:
    exposure = expose(mesh_kube, APP, "web-svc", HOST)
    assert (exposure.gateway, exposure.virtual_service) == (
        "emoji-istio-test-net-gateway",
        "emoji-istio-test-net",
    )
    assert get(mesh_kube, "virtualservices", "emoji-istio-test-net")["spec"]["gateways"] == [
        "emoji-istio-test-net-gateway"
    ]


def test_expose_again_is_a_no_op(mesh_kube: Kube) -> None:
    first = expose(mesh_kube, APP, "web-svc", HOST)
    before = istio_objects(mesh_kube)

    again = expose(mesh_kube, APP, "web-svc", HOST)

    assert again.written == ()
    assert again.urls == first.urls
    assert istio_objects(mesh_kube) == before


def test_identical_objects_made_by_hand_are_fine(playground: Playground, mesh_kube: Kube) -> None:
    apply_by_hand(mesh_kube, SEED_GATEWAY)
    apply_by_hand(mesh_kube, SEED_ROUTE)
    playground.hooks.requests.clear()

    exposure = expose(mesh_kube, APP, "web-svc", HOST, name="emojivoto")

    assert exposure.written == ()
    assert exposure.urls == URLS
    assert playground.hooks.writes() == []


def test_meshbot_updates_its_own_route(mesh_kube: Kube) -> None:
    expose(mesh_kube, APP, "web-svc", HOST)
    exposure = expose(mesh_kube, APP, "emoji-svc", HOST, port=8080)
    assert exposure.written == (f"VirtualService {APP}/emoji-istio-test-net",)
    route = get(mesh_kube, "virtualservices", "emoji-istio-test-net")
    assert route["spec"]["http"][0]["route"] == [
        {"destination": {"host": "emoji-svc", "port": {"number": 8080}}}
    ]


def test_host_served_by_someone_else_is_refused(playground: Playground, mesh_kube: Kube) -> None:
    apply_by_hand(mesh_kube, SEED_GATEWAY)
    faulty = yaml.safe_load(write_up.EXPOSE_YAML.split("---")[1])
    faulty["spec"]["http"][0]["fault"] = {"abort": {"httpStatus": 500, "percentage": {"value": 50}}}
    apply_by_hand(mesh_kube, faulty)
    before = istio_objects(mesh_kube)
    playground.hooks.requests.clear()

    with pytest.raises(HostTaken) as refused:
        expose(mesh_kube, APP, "web-svc", HOST)
    assert str(refused.value) == (
        f"{HOST} is already served by Gateway {APP}/emojivoto-gateway, created by someone else "
        "(not managed by meshbot); meshbot will not add a second route for it"
    )
    # Same names as the hand-made objects: the different VirtualService is not overwritten.
    with pytest.raises(HostTaken, match=f"VirtualService {APP}/emojivoto already exists and is not managed"):
        expose(mesh_kube, APP, "web-svc", HOST, name="emojivoto")

    assert playground.hooks.writes() == []
    assert istio_objects(mesh_kube) == before
    assert "fault" in get(mesh_kube, "virtualservices", "emojivoto")["spec"]["http"][0]


def test_host_already_exposed_by_meshbot_under_another_name_is_refused(mesh_kube: Kube) -> None:
    expose(mesh_kube, APP, "web-svc", HOST)
    before = istio_objects(mesh_kube)
    with pytest.raises(HostTaken, match="created by meshbot"):
        expose(mesh_kube, APP, "web-svc", HOST, name="emojivoto")
    assert istio_objects(mesh_kube) == before


def test_a_name_taken_by_another_host_is_refused(mesh_kube: Kube) -> None:
    expose(mesh_kube, APP, "web-svc", "web.test.net", name="shared")
    before = istio_objects(mesh_kube)
    with pytest.raises(
        HostTaken, match=f"Gateway {APP}/shared-gateway already exists and serves another host"
    ):
        expose(mesh_kube, APP, "web-svc", HOST, name="shared")
    assert istio_objects(mesh_kube) == before


def test_a_failed_route_leaves_no_gateway_behind(playground: Playground, mesh_kube: Kube) -> None:
    httpx.post(
        f"{playground.url}/_playground/faults",
        json={"path": "/virtualservices$", "method": "POST", "code": 503},
    ).raise_for_status()
    with pytest.raises(Unavailable, match=f"creating VirtualService {APP}/emoji-istio-test-net"):
        expose(mesh_kube, APP, "web-svc", HOST)
    assert istio_objects(mesh_kube) == []


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("namespace", "service", "host", "options", "error", "message"),
    [
        (
            APP,
            "webb",
            HOST,
            {},
            NotFound,
            f"there is no service webb in namespace {APP}; services there: emoji-svc, voting-svc, web-svc",
        ),
        ("emojivoto", "web-svc", HOST, {}, NotFound, "namespace emojivoto does not exist"),
        (
            APP,
            "web-svc",
            HOST,
            {"port": 8080},
            ExposeOptionError,
            "service web-svc has no port 8080; its ports: 80 (http)",
        ),
        (
            APP,
            "emoji-svc",
            HOST,
            {},
            ExposeOptionError,
            "service emoji-svc has several ports (8080 (grpc), 8801 (prom)): say which one to expose",
        ),
        (APP, "web-svc", "http://emoji-istio.test.net", {}, ExposeOptionError, "is not a DNS name"),
        (APP, "web-svc", "Emoji-Istio.test.net", {}, ExposeOptionError, "is not a DNS name"),
        (APP, "web-svc", "*.test.net", {}, ExposeOptionError, "is not a DNS name"),
        (APP, "web-svc", "emoji-istio.test.net:30080", {}, ExposeOptionError, "is not a DNS name"),
        (
            APP,
            "web-svc",
            HOST,
            {"name": "Emojivoto"},
            ExposeOptionError,
            "name 'Emojivoto' is not a valid name",
        ),
        (APP, "web-svc", HOST, {"name": "x" * 56}, ExposeOptionError, "is not a valid name"),
    ],
)
def test_bad_input_is_refused_and_nothing_changes(
    refusing: tuple[Playground, Kube],
    namespace: str,
    service: str,
    host: str,
    options: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    pg, kube = refusing
    before = istio_objects(kube)
    pg.hooks.requests.clear()
    with pytest.raises(error) as raised:
        expose(kube, namespace, service, host, **options)
    assert message in str(raised.value)
    assert pg.hooks.writes() == []
    assert istio_objects(kube) == before


def test_without_istio_there_is_nothing_to_expose_through(make_playground: Callable[..., Playground]) -> None:
    bare = make_playground("article-bare")
    kube = for_url(bare.url)
    with pytest.raises(NotFound, match="there is no ingress gateway"):
        expose(kube, APP, "web-svc", HOST)
    with pytest.raises(NotFound, match="are not served: is Istio installed"):
        unexpose(kube, HOST, namespace=APP)
    assert bare.hooks.writes() == []


# ----------------------------------------------------------------- unexpose


def test_unexpose_deletes_only_meshbot_objects_for_the_host(mesh_kube: Kube) -> None:
    expose(mesh_kube, APP, "web-svc", HOST)
    other = gateway_manifest("other-gateway", APP, "other.test.net")
    other["metadata"]["labels"] = {}
    apply_by_hand(mesh_kube, other)
    expose(mesh_kube, APP, "web-svc", "web.test.net")

    removed = unexpose(mesh_kube, HOST, namespace=APP)

    assert removed.deleted == (
        f"VirtualService {APP}/emoji-istio-test-net",
        f"Gateway {APP}/emoji-istio-test-net-gateway",
    )
    assert removed.left == ()
    assert [(p, n) for p, _, n, _ in istio_objects(mesh_kube)] == [
        ("gateways", "other-gateway"),
        ("gateways", "web-test-net-gateway"),
        ("virtualservices", "web-test-net"),
    ]
    with pytest.raises(NotFound, match=f"^meshbot has not exposed {HOST} in namespace {APP}$"):
        unexpose(mesh_kube, HOST, namespace=APP)


def test_unexpose_leaves_hand_made_objects_alone(mesh_kube: Kube, playground: Playground) -> None:
    apply_by_hand(mesh_kube, SEED_GATEWAY)
    apply_by_hand(mesh_kube, SEED_ROUTE)
    before = istio_objects(mesh_kube)
    playground.hooks.requests.clear()
    with pytest.raises(NotFound) as refused:
        unexpose(mesh_kube, HOST, namespace=APP)
    assert str(refused.value) == (
        f"meshbot has not exposed {HOST} in namespace {APP}; it is served by VirtualService {APP}/emojivoto, "
        f"Gateway {APP}/emojivoto-gateway, which meshbot does not manage"
    )
    assert playground.hooks.writes() == []
    assert istio_objects(mesh_kube) == before


def test_unexpose_acts_in_its_namespace_only(mesh_kube: Kube, playground: Playground) -> None:
    # Whoever may act in one namespace must not take down another namespace's exposure by host.
    expose(mesh_kube, APP, "web-svc", HOST)
    before = istio_objects(mesh_kube)
    playground.hooks.requests.clear()
    with pytest.raises(NotFound) as refused:
        unexpose(mesh_kube, HOST, namespace="default")
    assert str(refused.value) == (
        f"meshbot has not exposed {HOST} in namespace default; it did in {APP}: "
        f"name that namespace (`unexpose {HOST} -n {APP}`)"
    )
    assert playground.hooks.writes() == []
    assert istio_objects(mesh_kube) == before
