"""The seeds: the clusters a playground can start as, checked through the official client.

`article` is the seed write-up's cluster after `istioctl install --set profile=demo` and its
add-ons, with emojivoto deployed in emojivoto-istio (not yet labelled for injection);
`article-bare` is the same before Istio; `empty` is a new cluster; `large:NxM` is for benchmarks.
"""

# The client's models make every field Optional; a test asserts on what the server sent, so a
# None where a value belongs fails the assertion anyway. Narrowing each access would only add noise.
# mypy: disable-error-code="union-attr, index, operator, arg-type, misc"

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from playground import runner
from playground.runner import Playground
from tests.conftest import kube_client_for

APP_NS = "emojivoto-istio"
SYSTEM_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}
ISTIO_GROUPS = {"networking.istio.io", "security.istio.io"}


@pytest.fixture
def seeded(make_playground: Callable[..., Playground]) -> Iterator[Callable[[str], ApiClient]]:
    clients: list[ApiClient] = []

    def start(seed: str) -> ApiClient:
        clients.append(kube_client_for(make_playground(seed)))
        return clients[-1]

    yield start
    for api in clients:
        api.close()


def namespaces(kube: ApiClient) -> set[str]:
    return {n.metadata.name for n in client.CoreV1Api(kube).list_namespace().items}


def groups(kube: ApiClient) -> set[str]:
    return {g.name for g in client.ApisApi(kube).get_api_versions().groups}


def app_of(pod: client.V1Pod) -> str:
    return pod.metadata.labels["app"]


def test_empty_is_a_new_cluster(seeded: Callable[[str], ApiClient]) -> None:
    kube = seeded("empty")
    core = client.CoreV1Api(kube)

    assert namespaces(kube) == SYSTEM_NAMESPACES
    for ns in SYSTEM_NAMESPACES:
        assert core.read_namespaced_service_account("default", ns).metadata.uid
        assert "ca.crt" in core.read_namespaced_config_map("kube-root-ca.crt", ns).data
    service = core.read_namespaced_service("kubernetes", "default")
    assert service.spec.cluster_ip == "10.96.0.1"
    assert [(p.name, p.port, p.target_port) for p in service.spec.ports] == [("https", 443, 6443)]
    [subset] = core.read_namespaced_endpoints("kubernetes", "default").subsets
    assert [(p.name, p.port) for p in subset.ports] == [("https", 6443)]
    assert core.list_pod_for_all_namespaces().items == []
    assert client.ApiextensionsV1Api(kube).list_custom_resource_definition().items == []
    assert not groups(kube) & ISTIO_GROUPS


def test_a_new_namespace_gets_its_default_service_account_and_root_ca(kube: ApiClient) -> None:
    core = client.CoreV1Api(kube)

    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="team-a")))

    assert [a.metadata.name for a in core.list_namespaced_service_account("team-a").items] == ["default"]
    assert [c.metadata.name for c in core.list_namespaced_config_map("team-a").items] == ["kube-root-ca.crt"]
    labels = core.read_namespace("team-a").metadata.labels
    assert labels == {"kubernetes.io/metadata.name": "team-a"}


def test_article_istio_system_matches_the_write_up(kube: ApiClient) -> None:
    core = client.CoreV1Api(kube)
    apps = client.AppsV1Api(kube)

    assert namespaces(kube) == SYSTEM_NAMESPACES | {"istio-system", APP_NS}
    deployments = {d.metadata.name: d for d in apps.list_namespaced_deployment("istio-system").items}
    assert set(deployments) == {
        "grafana",
        "istio-egressgateway",
        "istio-ingressgateway",
        "istio-tracing",
        "istiod",
        "kiali",
        "prometheus",
    }
    assert all(d.status.ready_replicas == 1 for d in deployments.values())
    containers = {app_of(p): len(p.spec.containers) for p in core.list_namespaced_pod("istio-system").items}
    assert containers["prometheus"] == 2
    assert sum(containers.values()) == 8

    services = {s.metadata.name: s for s in core.list_namespaced_service("istio-system").items}
    assert set(services) == {
        "grafana",
        "istio-egressgateway",
        "istio-ingressgateway",
        "istiod",
        "jaeger-agent",
        "jaeger-collector",
        "jaeger-collector-headless",
        "jaeger-query",
        "kiali",
        "prometheus",
        "tracing",
        "zipkin",
    }
    ingress = services["istio-ingressgateway"]
    assert ingress.spec.type == "LoadBalancer"
    assert ingress.status.load_balancer.ingress[0].ip == "172.2.0.201"
    assert [(p.port, p.node_port) for p in ingress.spec.ports] == [
        (15020, 32553),
        (80, 30080),
        (443, 30820),
        (31400, 32112),
        (15443, 30203),
    ]
    assert services["jaeger-agent"].spec.cluster_ip == "None"
    assert [(p.port, p.protocol) for p in services["istiod"].spec.ports] == [
        (15010, "TCP"),
        (15012, "TCP"),
        (443, "TCP"),
        (15014, "TCP"),
        (53, "UDP"),
        (853, "TCP"),
    ]
    assert groups(kube) >= ISTIO_GROUPS
    crds = {c.metadata.name for c in client.ApiextensionsV1Api(kube).list_custom_resource_definition().items}
    assert {
        "virtualservices.networking.istio.io",
        "gateways.networking.istio.io",
        "destinationrules.networking.istio.io",
        "peerauthentications.security.istio.io",
    } <= crds


def test_article_emojivoto_is_deployed_but_not_labelled(kube: ApiClient) -> None:
    core = client.CoreV1Api(kube)

    labels = core.read_namespace(APP_NS).metadata.labels
    assert "istio-injection" not in labels
    deployments = client.AppsV1Api(kube).list_namespaced_deployment(APP_NS).items
    assert sorted(str(d.metadata.name) for d in deployments) == ["emoji", "vote-bot", "voting", "web"]
    services = {
        s.metadata.name: [p.port for p in s.spec.ports] for s in core.list_namespaced_service(APP_NS).items
    }
    assert services == {"emoji-svc": [8080, 8801], "voting-svc": [8080, 8801], "web-svc": [80]}
    pods = core.list_namespaced_pod(APP_NS).items
    assert sorted(app_of(p) for p in pods) == ["emoji-svc", "vote-bot", "voting-svc", "web-svc"]
    assert all(len(p.spec.containers) == 1 and p.status.phase == "Running" for p in pods)
    # The app's own configuration points at the moved namespace.
    web = client.AppsV1Api(kube).read_namespaced_deployment("web", APP_NS)
    env = {e.name: e.value for e in web.spec.template.spec.containers[0].env}
    assert env["EMOJISVC_HOST"] == f"emoji-svc.{APP_NS}:8080"


def test_article_bare_is_the_cluster_before_istio(seeded: Callable[[str], ApiClient]) -> None:
    kube = seeded("article-bare")
    core = client.CoreV1Api(kube)

    assert namespaces(kube) == SYSTEM_NAMESPACES | {APP_NS}
    assert not groups(kube) & ISTIO_GROUPS
    assert client.ApiextensionsV1Api(kube).list_custom_resource_definition().items == []
    pods = core.list_namespaced_pod(APP_NS).items
    assert len(pods) == 4
    assert all(len(p.spec.containers) == 1 for p in pods)


def test_large_seeds_namespaces_of_services(seeded: Callable[[str], ApiClient]) -> None:
    kube = seeded("large:3x2")
    core = client.CoreV1Api(kube)

    teams = sorted(n for n in namespaces(kube) if n.startswith("team-"))
    assert teams == ["team-000", "team-001", "team-002"]
    for team in teams:
        assert core.read_namespace(team).metadata.labels["istio-injection"] == "enabled"
        assert sorted(str(s.metadata.name) for s in core.list_namespaced_service(team).items) == [
            "svc-000",
            "svc-001",
        ]
        routes = client.CustomObjectsApi(kube).list_namespaced_custom_object(
            "networking.istio.io", "v1", team, "virtualservices"
        )
        assert sorted(r["metadata"]["name"] for r in routes["items"]) == ["svc-000", "svc-001"]
        pods = core.list_namespaced_pod(team).items
        assert len(pods) == 2
        # Injection was enabled and istiod running: every pod carries the sidecar.
        assert all([c.name for c in p.spec.containers][-1] == "istio-proxy" for p in pods)


def test_an_unknown_seed_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown seed 'nonsense'; choose one of: empty, article"):
        runner.start("nonsense")
    with pytest.raises(ValueError, match=r"expected large:NxM"):
        runner.start("large:lots")


def test_every_playground_starts_from_a_fresh_copy_of_its_seed(
    make_playground: Callable[..., Playground],
) -> None:
    first = make_playground("article")
    with kube_client_for(first) as kube:
        core = client.CoreV1Api(kube)
        core.delete_namespace(APP_NS)
        core.patch_namespace("default", {"metadata": {"labels": {"touched": "yes"}}})

    second = make_playground("article")
    with kube_client_for(second) as kube:
        core = client.CoreV1Api(kube)
        assert APP_NS in namespaces(kube)
        assert "touched" not in core.read_namespace("default").metadata.labels
        # Resource versions and names carry on from the seed, as after a restart of the same cluster.
        listed = core.list_namespaced_config_map("default").metadata.resource_version
        made = core.create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="fresh"))
        )
        assert int(made.metadata.resource_version) > int(listed)
        assert len({p.status.pod_ip for p in core.list_pod_for_all_namespaces().items}) == 11


def test_the_same_seed_gives_the_same_names(make_playground: Callable[..., Playground]) -> None:
    def pod_names(pg: Playground) -> list[str]:
        with kube_client_for(pg) as kube:
            return sorted(p.metadata.name for p in client.CoreV1Api(kube).list_namespaced_pod(APP_NS).items)

    assert pod_names(make_playground("article")) == pod_names(make_playground("article"))
    assert pod_names(make_playground("article")) != pod_names(make_playground("article", random_seed=7))
