"""Starting states for the playground: `empty`, `article` (the seed write-up's cluster),
`article-bare` (the same before Istio is installed) and `large` (for benchmarks)."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from pathlib import Path

import yaml

from playground import istio_sim
from playground.api import Target
from playground.apiserver import ApiServer
from playground.controller import NODE_IP
from playground.meta import Obj

APP_NAMESPACE = "emojivoto-istio"
# Found next to this module, not through the `playground` package name: under pytest that name can
# resolve to the tests/playground package instead.
_DATA = Path(__file__).parent / "data"


def create(api: ApiServer, obj: Obj) -> None:
    """Creates one object through the API server's create path (validation, admission, controller)."""
    rtype = api.registry.by_kind(obj["apiVersion"], obj["kind"])
    if rtype is None:
        raise ValueError(f"{obj['apiVersion']} {obj['kind']} is not served")
    version = obj["apiVersion"].rpartition("/")[2]
    api.create(Target(rtype, version, obj["metadata"].get("namespace", "")), obj)


def _namespace(name: str, labels: dict[str, str] | None = None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": labels or {}},
    }


def empty(api: ApiServer) -> None:
    """What a new cluster has: the system namespaces and the `kubernetes` service."""
    # The controller gives each namespace its `default` ServiceAccount and kube-root-ca.crt.
    for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
        create(api, _namespace(name))
    create(
        api,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {"component": "apiserver", "provider": "kubernetes"},
            },
            "spec": {
                "clusterIP": "10.96.0.1",
                "ports": [{"name": "https", "port": 443, "targetPort": 6443}],
            },
        },
    )
    # The API server keeps these itself (the service has no selector): its own address.
    create(
        api,
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
            },
            "subsets": [
                {
                    "addresses": [{"ip": NODE_IP}],
                    "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}],
                }
            ],
        },
    )


@functools.cache
def _emojivoto_documents() -> tuple[Obj, ...]:
    text = (_DATA / "emojivoto.yaml").read_text()
    return tuple(d for d in yaml.safe_load_all(text) if d)


def emojivoto(namespace: str = APP_NAMESPACE) -> list[Obj]:
    """Upstream's emojivoto manifests, moved into `namespace`."""
    docs = []
    for doc in copy.deepcopy(list(_emojivoto_documents())):
        if doc["kind"] == "Namespace":
            doc["metadata"]["name"] = namespace
        else:
            doc["metadata"]["namespace"] = namespace
        for container in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            for env in container.get("env", []):
                if isinstance(env.get("value"), str):
                    env["value"] = env["value"].replace(".emojivoto:", f".{namespace}:")
        docs.append(doc)
    return docs


def article_bare(api: ApiServer) -> None:
    """The write-up's cluster before `istioctl install`: emojivoto running without sidecars."""
    empty(api)
    for doc in emojivoto():
        create(api, doc)


def article(api: ApiServer) -> None:
    """The write-up's cluster after `istioctl install --set profile=demo` and its add-ons;
    emojivoto-istio not yet labelled for injection."""
    empty(api)
    istio_sim.install(api, "demo")
    istio_sim.install_addons(api)
    for doc in emojivoto():
        create(api, doc)


def large(api: ApiServer, namespaces: int = 20, services: int = 10) -> None:
    """`namespaces` × `services` services, each with a Deployment, its pod and a VirtualService."""
    empty(api)
    istio_sim.install(api, "demo")
    for n in range(namespaces):
        ns = f"team-{n:03d}"
        create(api, _namespace(ns, {"istio-injection": "enabled"}))
        for s in range(services):
            app = f"svc-{s:03d}"
            labels = {"app": app}
            create(
                api,
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": app, "namespace": ns, "labels": labels},
                    "spec": {
                        "replicas": 1,
                        "selector": {"matchLabels": labels},
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {
                                "containers": [
                                    {
                                        "name": app,
                                        "image": "docker.io/library/nginx:1.27",
                                        "ports": [{"containerPort": 8080, "name": "http"}],
                                    }
                                ]
                            },
                        },
                    },
                },
            )
            create(
                api,
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": app, "namespace": ns, "labels": labels},
                    "spec": {
                        "selector": labels,
                        "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                    },
                },
            )
            create(
                api,
                {
                    "apiVersion": "networking.istio.io/v1",
                    "kind": "VirtualService",
                    "metadata": {"name": app, "namespace": ns},
                    "spec": {
                        "hosts": [app],
                        "http": [{"route": [{"destination": {"host": app, "port": {"number": 80}}}]}],
                    },
                },
            )


def _large_from(spec: str) -> Callable[[ApiServer], None]:
    """`large` or `large:NxM` (N namespaces × M services)."""
    _, _, size = spec.partition(":")
    if not size:
        return large
    try:
        n, m = (int(x) for x in size.lower().split("x"))
    except ValueError:
        raise ValueError(f"seed {spec!r}: expected large:NxM, e.g. large:20x10") from None
    return functools.partial(large, namespaces=n, services=m)


SEEDS: dict[str, Callable[[ApiServer], None]] = {
    "empty": empty,
    "article": article,
    "article-bare": article_bare,
    "large": large,
}


def apply_seed(api: ApiServer, name: str) -> None:
    if name.startswith("large"):
        seeder = _large_from(name)
    elif name in SEEDS:
        seeder = SEEDS[name]
    else:
        raise ValueError(f"unknown seed {name!r}; choose one of: {', '.join(SEEDS)}, large:NxM")
    seeder(api)
