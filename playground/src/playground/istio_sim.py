"""What Istio does to a cluster, for the playground: the objects `istioctl install` creates, and the
sidecar injector webhook that adds `istio-proxy` to new pods in labelled namespaces.

The install reproduces the cluster of the seed write-up (`istioctl install --set profile=demo`):
the same Deployments and Services in istio-system, the ingress gateway's node ports (80:30080…)
and LoadBalancer address 172.2.0.201.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import yaml

from playground.api import ClusterApi, Target
from playground.meta import Obj, dig

ISTIO_VERSION = "1.24.2"
# Found next to this module, not through the `playground` package name: under pytest that name can
# resolve to the tests/playground package instead.
_DATA = Path(__file__).parent / "data"
ISTIO_NAMESPACE = "istio-system"
INGRESS_LB_IP = "172.2.0.201"
# The seed's `kubectl get svc -n istio-system`: port → nodePort of istio-ingressgateway.
INGRESS_PORTS = (
    ("status-port", 15020, 15020, 32553),
    ("http2", 80, 8080, 30080),
    ("https", 443, 8443, 30820),
    ("tcp", 31400, 31400, 32112),
    ("tls", 15443, 15443, 30203),
)
PROFILES: dict[str, tuple[str, ...]] = {
    "demo": ("istiod", "istio-ingressgateway", "istio-egressgateway"),
    "default": ("istiod", "istio-ingressgateway"),
    "minimal": ("istiod",),
    "ambient": ("istiod",),
    "empty": (),
}
_COMPONENT_LABELS = {
    "istiod": {"app": "istiod", "istio": "pilot"},
    "istio-ingressgateway": {"app": "istio-ingressgateway", "istio": "ingressgateway"},
    "istio-egressgateway": {"app": "istio-egressgateway", "istio": "egressgateway"},
}
_COMPONENT_MESSAGES = {
    "istiod": "Istiod installed 🧠",
    "istio-ingressgateway": "Ingress gateways installed 🛬",
    "istio-egressgateway": "Egress gateways installed 🛫",
}


@functools.cache
def _crd_documents() -> tuple[Obj, ...]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = (_DATA / "istio-crds.yaml").read_text()
    return tuple(d for d in yaml.load_all(text, Loader=loader) if d)


def istio_crds() -> list[Obj]:
    """Istio's own CustomResourceDefinitions (VirtualService, Gateway, …), fresh copies."""
    return copy.deepcopy(list(_crd_documents()))


def _put(api: ClusterApi, group: str, plural: str, obj: Obj, status: Obj | None = None) -> None:
    rtype = api.registry.get(group, plural)
    assert rtype is not None, f"{plural}.{group} is not served"
    namespace = obj["metadata"].get("namespace", "")
    target = Target(rtype, rtype.storage_version, namespace, obj["metadata"]["name"])
    if api.store.exists(rtype.key, namespace, obj["metadata"]["name"]):
        return
    api.create(target, obj)
    if status is not None:
        stored = api.store.get(rtype.key, namespace, obj["metadata"]["name"])
        assert stored is not None
        stored["status"] = status
        api.store.write(rtype.key, stored)


def _deployment(name: str, image: str, labels: dict[str, str], containers: int = 1) -> Obj:
    pod_containers = [{"name": "discovery" if name == "istiod" else "istio-proxy", "image": image}]
    for extra in range(1, containers):
        pod_containers.append({"name": f"sidecar-{extra}", "image": image})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ISTIO_NAMESPACE, "labels": dict(labels)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {
                    "labels": dict(labels),
                    "annotations": {"sidecar.istio.io/inject": "false"},
                },
                "spec": {"containers": pod_containers},
            },
        },
    }


def _service(
    name: str,
    ports: list[Obj],
    selector: dict[str, str],
    kind: str = "ClusterIP",
    cluster_ip: str | None = None,
) -> Obj:
    spec: Obj = {"type": kind, "selector": dict(selector), "ports": ports}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ISTIO_NAMESPACE, "labels": dict(selector)},
        "spec": spec,
    }


def _port(name: str, port: int, target: int | None = None, protocol: str = "TCP") -> Obj:
    return {"name": name, "port": port, "targetPort": target or port, "protocol": protocol}


def install(api: ClusterApi, profile: str = "demo", version: str = ISTIO_VERSION) -> list[str]:
    """Creates what `istioctl install --set profile=<profile>` creates; returns its progress lines."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}")
    _put(api, "", "namespaces", {"metadata": {"name": ISTIO_NAMESPACE}})
    for crd in istio_crds():
        _put(api, "apiextensions.k8s.io", "customresourcedefinitions", crd)
    lines = ["✔ Istio core installed ⛵️"]
    for component in PROFILES[profile]:
        labels = _COMPONENT_LABELS[component]
        image = f"docker.io/istio/{'pilot' if component == 'istiod' else 'proxyv2'}:{version}"
        _put(
            api,
            "",
            "serviceaccounts",
            {"metadata": {"name": component, "namespace": ISTIO_NAMESPACE}},
        )
        _put(api, "apps", "deployments", _deployment(component, image, labels))
        if component == "istiod":
            ports = [
                _port("grpc-xds", 15010),
                _port("https-dns", 15012),
                _port("https-webhook", 443, 15017),
                _port("http-monitoring", 15014),
                _port("dns", 53, 15053, "UDP"),
                _port("dns-tls", 853, 15053),
            ]
            _put(api, "", "services", _service("istiod", ports, labels))
        elif component == "istio-ingressgateway":
            ports = [
                {**_port(name, port, target), "nodePort": node_port}
                for name, port, target, node_port in INGRESS_PORTS
            ]
            _put(
                api,
                "",
                "services",
                _service(component, ports, labels, "LoadBalancer"),
                status={"loadBalancer": {"ingress": [{"ip": INGRESS_LB_IP}]}},
            )
        else:
            ports = [_port("http2", 80, 8080), _port("https", 443, 8443), _port("tls", 15443)]
            _put(api, "", "services", _service(component, ports, labels))
        lines.append(f"✔ {_COMPONENT_MESSAGES[component]}")
    lines.append("✔ Installation complete")
    return lines


def install_addons(api: ClusterApi) -> None:
    """The observability add-ons of the seed's istio-system: grafana, kiali, prometheus, tracing."""
    addons = {
        "grafana": ("docker.io/grafana/grafana:7.0.5", [_port("http", 3000)], 1),
        "kiali": ("quay.io/kiali/kiali:v1.18", [_port("http-kiali", 20001)], 1),
        "prometheus": ("docker.io/prom/prometheus:v2.15.1", [_port("http-prometheus", 9090)], 2),
        "istio-tracing": ("docker.io/jaegertracing/all-in-one:1.16", [], 1),
    }
    for name, (image, ports, containers) in addons.items():
        labels = {"app": "jaeger" if name == "istio-tracing" else name}
        _put(api, "apps", "deployments", _deployment(name, image, labels, containers))
        if ports:
            _put(api, "", "services", _service(name, ports, labels))
    jaeger = {"app": "jaeger"}
    udp = "UDP"
    _put(
        api,
        "",
        "services",
        _service(
            "jaeger-agent",
            [
                _port("zipkin-compact", 5775, None, udp),
                _port("jaeger-compact", 6831, None, udp),
                _port("jaeger-binary", 6832, None, udp),
            ],
            jaeger,
            cluster_ip="None",
        ),
    )
    _put(
        api,
        "",
        "services",
        _service(
            "jaeger-collector",
            [
                _port("jaeger-collector-tchannel", 14267),
                _port("jaeger-collector-http", 14268),
                _port("jaeger-collector-grpc", 14250),
            ],
            jaeger,
        ),
    )
    _put(
        api,
        "",
        "services",
        _service(
            "jaeger-collector-headless",
            [_port("jaeger-collector-grpc", 14250)],
            jaeger,
            cluster_ip="None",
        ),
    )
    _put(api, "", "services", _service("jaeger-query", [_port("query-http", 16686)], jaeger))
    _put(api, "", "services", _service("tracing", [_port("http-query", 80, 16686)], jaeger))
    _put(api, "", "services", _service("zipkin", [_port("http-query", 9411)], jaeger))


def uninstall(api: ClusterApi) -> list[str]:
    """`istioctl uninstall --purge`: the control plane, gateways and CRDs go; the namespace stays."""
    lines = []
    for component in ("istio-egressgateway", "istio-ingressgateway", "istiod"):
        for group, plural in (("apps", "deployments"), ("", "services"), ("", "serviceaccounts")):
            rtype = api.registry.get(group, plural)
            assert rtype is not None
            if api.store.exists(rtype.key, ISTIO_NAMESPACE, component):
                api.delete(Target(rtype, "v1", ISTIO_NAMESPACE, component))
                if plural == "deployments":
                    lines.append(f"✔ Removed {component}.")
    crds = api.registry.get("apiextensions.k8s.io", "customresourcedefinitions")
    assert crds is not None
    for crd in istio_crds():
        if api.store.exists(crds.key, "", crd["metadata"]["name"]):
            api.delete(Target(crds, "v1", "", crd["metadata"]["name"]))
    lines.append("✔ Uninstall complete")
    return lines


def istiod_version(api: ClusterApi) -> str | None:
    """The version of a ready istiod, or None: the injector webhook only answers while istiod runs."""
    istiod = api.store.get(("apps", "deployments"), ISTIO_NAMESPACE, "istiod")
    if istiod is None or not dig(istiod, "status", "readyReplicas"):
        return None
    image = str(dig(istiod, "spec", "template", "spec", "containers", 0, "image", default=""))
    return image.rsplit(":", 1)[-1] if ":" in image else ISTIO_VERSION


def _wants_injection(namespace: Obj | None, pod: Obj) -> bool:
    if namespace is None:
        return False
    labels = dig(namespace, "metadata", "labels", default={}) or {}
    if labels.get("istio-injection") != "enabled":
        return False
    pod_meta = pod.get("metadata", {})
    for source in (pod_meta.get("annotations") or {}, pod_meta.get("labels") or {}):
        if str(source.get("sidecar.istio.io/inject", "")).lower() == "false":
            return False
    containers = dig(pod, "spec", "containers", default=[])
    return not any(c.get("name") == "istio-proxy" for c in containers)


def inject_sidecar(api: ClusterApi, pod: Obj) -> None:
    namespace = api.store.get(("", "namespaces"), "", pod["metadata"].get("namespace", ""))
    if not _wants_injection(namespace, pod):
        return
    version = istiod_version(api)
    if version is None:
        return
    proxy_image = f"docker.io/istio/proxyv2:{version}"
    spec = pod["spec"]
    spec.setdefault("initContainers", []).append(
        {"name": "istio-init", "image": proxy_image, "args": ["istio-iptables", "-p", "15001"]}
    )
    spec["containers"].append(
        {
            "name": "istio-proxy",
            "image": proxy_image,
            "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
            "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
        }
    )
    meta = pod["metadata"]
    meta.setdefault("annotations", {})["sidecar.istio.io/status"] = json.dumps(
        {
            "initContainers": ["istio-init"],
            "containers": ["istio-proxy"],
            "volumes": [
                "istio-envoy",
                "istio-data",
                "istio-podinfo",
                "istio-token",
                "istiod-ca-cert",
            ],
            "imagePullSecrets": None,
            "revision": "default",
        },
        separators=(",", ":"),
    )
    labels = meta.setdefault("labels", {})
    labels.setdefault("security.istio.io/tlsMode", "istio")
    labels.setdefault(
        "service.istio.io/canonical-name",
        labels.get("app", meta.get("generateName", "pod").rstrip("-")),
    )


def run_istioctl(api: ClusterApi, args: list[str]) -> tuple[int, str]:
    """Runs an istioctl command line against the playground: (exit code, combined output)."""
    if not args:
        return 1, "Error: a command is required (install, uninstall, version)\n"
    command, rest = args[0], args[1:]
    settings = _set_flags(rest)
    if command == "version":
        current = istiod_version(api)
        control = (
            f"control plane version: {current}\n" if current else 'no running Istio pods in "istio-system"\n'
        )
        return 0, f"client version: {ISTIO_VERSION}\n{control}"
    if command == "install":
        profile = settings.get("profile", "default")
        if profile not in PROFILES:
            return 1, f'Error: could not find profile "{profile}"\n'
        if "-y" not in rest and "--skip-confirmation" not in rest:
            return 1, "Error: refusing to install without -y in a non-interactive session\n"
        return 0, "\n".join(install(api, profile)) + "\n"
    if command == "uninstall":
        if "--purge" not in rest:
            return (
                1,
                "Error: at least one of the --revision (or --set revision=<revision>), --filename or "
                "--purge flags must be set\n",
            )
        return 0, "\n".join(uninstall(api)) + "\n"
    return 1, f'Error: unknown command "{command}" for "istioctl"\n'


def _set_flags(args: list[str]) -> dict[str, str]:
    settings: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        value = None
        if arg in ("--set", "-s") and i + 1 < len(args):
            value = args[i + 1]
            i += 1
        elif arg.startswith("--set="):
            value = arg.split("=", 1)[1]
        elif arg in ("--revision", "-r") and i + 1 < len(args):
            settings["revision"] = args[i + 1]
            i += 1
        if value and "=" in value:
            key, val = value.split("=", 1)
            settings[key] = val
        i += 1
    return settings


def job_behaviour(api: ClusterApi, pod: Obj) -> tuple[bool, str] | None:
    """The official `istio/istioctl` image run as a Job: executes its arguments against the cluster."""
    container = dig(pod, "spec", "containers", 0, default={})
    image = str(container.get("image", ""))
    if not image.rsplit("/", 1)[-1].startswith("istioctl:"):
        return None
    # The image's entrypoint is istioctl; a Job may restate it as `command`.
    command = container.get("command") or ["istioctl"]
    args = [str(a) for a in [*command[1:], *(container.get("args") or [])]]
    code, output = run_istioctl(api, args)
    return code == 0, output
