"""Exposing a service through the ingress gateway: the write-up's Gateway + VirtualService for one
host, created only where nobody else already serves that host, and the URLs a person can open."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

from kubernetes.client import V1Service

from mesh.errors import MeshError, NotFound, calling
from mesh.install import ISTIO_NAMESPACE, IngressGateway, read_ingress_gateway
from mesh.kube import Kube
from mesh.namespaces import require_namespace, require_service

GROUP = "networking.istio.io"
VERSION = "v1"
MANAGED_BY = "app.kubernetes.io/managed-by"
MESHBOT = "meshbot"
GATEWAY_PORT = 80
# fullmatch, never `^…$`: `$` matches before a trailing newline.
_HOST = re.compile(r"(?=.{1,253}\Z)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_GATEWAY_SUFFIX = "-gateway"

Manifest = dict[str, Any]


class ExposeOptionError(MeshError):
    """A host, name or port that cannot be exposed; nothing was changed."""


class HostTaken(MeshError):
    """Something meshbot must not overwrite already serves the host; nothing was changed."""


# ----------------------------------------------------------------- pure: manifests


def validate_host(host: str) -> str:
    if not _HOST.fullmatch(host):
        raise ExposeOptionError(
            f"host {host!r} is not a DNS name like emoji-istio.test.net "
            "(lower-case letters, digits, '-' and '.'; no scheme, port, path or wildcard)"
        )
    return host


def default_name(host: str) -> str:
    """A name for the VirtualService derived from the host, leaving room for the Gateway suffix."""
    return host.replace(".", "-")[: 63 - len(_GATEWAY_SUFFIX)].rstrip("-")


def gateway_name(name: str) -> str:
    return f"{name}{_GATEWAY_SUFFIX}"


def name_for_gateway(gateway: str) -> str:
    """The name behind a Gateway's: people name the Gateway they want (`emojivoto-gateway`, as the
    write-up calls it), which must not become `emojivoto-gateway-gateway`."""
    base = gateway.removesuffix(_GATEWAY_SUFFIX)
    return base or gateway


def _metadata(name: str, namespace: str) -> Manifest:
    return {"name": name, "namespace": namespace, "labels": {MANAGED_BY: MESHBOT}}


def gateway_manifest(name: str, namespace: str, host: str, port: int = GATEWAY_PORT) -> Manifest:
    """The write-up's Gateway: an HTTP server for `host` on the default ingress gateway."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Gateway",
        "metadata": _metadata(name, namespace),
        "spec": {
            "selector": {"istio": "ingressgateway"},
            "servers": [{"port": {"number": port, "name": "http", "protocol": "HTTP"}, "hosts": [host]}],
        },
    }


def virtualservice_manifest(
    name: str, namespace: str, host: str, gateway: str, service: str, port: int
) -> Manifest:
    """The write-up's VirtualService: everything under `/` for `host` to the service's port."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VirtualService",
        "metadata": _metadata(name, namespace),
        "spec": {
            "hosts": [host],
            "gateways": [gateway],
            "http": [
                {
                    "match": [{"uri": {"prefix": "/"}}],
                    "route": [{"destination": {"host": service, "port": {"number": port}}}],
                }
            ],
        },
    }


@dataclass(frozen=True)
class ExposeUrl:
    url: str
    # Where the host name must resolve for the URL to work; None when any node will do.
    address: str | None
    via: str


def gateway_urls(host: str, ingress: IngressGateway, port: int = GATEWAY_PORT) -> tuple[ExposeUrl, ...]:
    """The URLs that reach `host` through the ingress gateway: its load-balancer addresses, and
    the node port the write-up uses (`http://emoji-istio.test.net:30080/`)."""
    urls = []
    on_port = "" if port == 80 else f":{port}"
    if ingress.type == "LoadBalancer":
        urls += [
            ExposeUrl(f"http://{host}{on_port}/", address, f"load balancer {address}")
            for address in ingress.external_addresses
        ]
    node_port = ingress.node_port(port)
    if node_port and ingress.type in ("NodePort", "LoadBalancer"):
        urls.append(ExposeUrl(f"http://{host}:{node_port}/", None, f"node port {node_port} on any node"))
    return tuple(urls)


def choose_port(service: V1Service, port: int | None) -> int:
    """The service port to route to: the one asked for, else its only port, else 80."""
    ports = (service.spec.ports if service.spec else None) or []
    numbers = [p.port for p in ports]
    name = service.metadata.name if service.metadata else "the service"
    listed = ", ".join(f"{p.port} ({p.name})" if p.name else str(p.port) for p in ports) or "none"
    if port is not None:
        if port not in numbers:
            raise ExposeOptionError(f"service {name} has no port {port}; its ports: {listed}")
        return port
    if len(numbers) == 1:
        return numbers[0]
    if 80 in numbers:
        return 80
    raise ExposeOptionError(f"service {name} has several ports ({listed}): say which one to expose")


def serves(obj: Manifest, host: str) -> bool:
    """Whether a Gateway or a gateway-bound VirtualService claims `host` at the ingress."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Gateway":
        hosts = [h for server in spec.get("servers") or [] for h in server.get("hosts") or []]
    else:
        if not [g for g in spec.get("gateways") or [] if g != "mesh"]:
            return False
        hosts = spec.get("hosts") or []
    # Gateway hosts may be written `namespace/host`.
    return any(str(h).rsplit("/", 1)[-1].lower() == host for h in hosts)


def is_managed(obj: Manifest) -> bool:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY) == MESHBOT


def describe(obj: Manifest) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind', 'object')} {meta.get('namespace')}/{meta.get('name')}"


# ----------------------------------------------------------------- I/O


def _plural(kind: str) -> str:
    return {"Gateway": "gateways", "VirtualService": "virtualservices"}[kind]


def list_istio_objects(kube: Kube, kind: str) -> list[Manifest]:
    """Every Gateway or VirtualService in the cluster, each with its kind set."""
    plural = _plural(kind)
    try:
        with calling(f"listing {plural}"):
            listed = kube.custom.list_custom_object_for_all_namespaces(
                GROUP, VERSION, plural, _request_timeout=kube.timeout
            )
    except NotFound:
        raise NotFound(f"{plural}.{GROUP}/{VERSION} are not served: is Istio installed?") from None
    items = cast(list[Manifest], cast(Manifest, listed).get("items") or [])
    for item in items:
        item.setdefault("kind", kind)
    return items


@dataclass(frozen=True)
class Exposure:
    host: str
    namespace: str
    service: str
    port: int
    gateway: str
    virtual_service: str
    # What this call wrote: ("Gateway emojivoto-istio/x", …); empty when all was already in place.
    written: tuple[str, ...]
    urls: tuple[ExposeUrl, ...]


def _plan(desired: Manifest, existing: list[Manifest], host: str) -> Manifest | None:
    """The object to replace (same name, owned by meshbot, same host), None to create; raises
    HostTaken when something else already serves the host or holds the name."""
    meta = desired["metadata"]
    same_name = None
    for obj in existing:
        obj_meta = obj.get("metadata") or {}
        if (obj_meta.get("namespace"), obj_meta.get("name")) == (meta["namespace"], meta["name"]):
            same_name = obj
        elif serves(obj, host):
            owner = "meshbot" if is_managed(obj) else "someone else (not managed by meshbot)"
            raise HostTaken(
                f"{host} is already served by {describe(obj)}, created by {owner}; "
                "meshbot will not add a second route for it"
            )
    if same_name is None or same_name.get("spec") == desired["spec"]:
        return same_name
    if is_managed(same_name) and serves(same_name, host):
        return same_name
    why = "is not managed by meshbot" if not is_managed(same_name) else "serves another host"
    raise HostTaken(f"{describe(same_name)} already exists and {why}; meshbot will not overwrite it")


def _write(kube: Kube, desired: Manifest, current: Manifest | None) -> bool:
    """Creates or replaces `desired`; False when an identical object is already there."""
    meta = desired["metadata"]
    plural = _plural(desired["kind"])
    if current is None:
        with calling(f"creating {describe(desired)}"):
            kube.custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                meta["namespace"],
                plural,
                desired,
                field_validation="Strict",
                _request_timeout=kube.timeout,
            )
        return True
    if current.get("spec") == desired["spec"]:
        return False
    body = {
        **desired,
        "metadata": {
            **desired["metadata"],
            # Optimistic concurrency: a change made since we listed makes this fail with 409.
            "resourceVersion": current["metadata"]["resourceVersion"],
            "labels": {**(current["metadata"].get("labels") or {}), MANAGED_BY: MESHBOT},
        },
    }
    with calling(f"updating {describe(desired)}"):
        kube.custom.replace_namespaced_custom_object(
            GROUP,
            VERSION,
            meta["namespace"],
            plural,
            meta["name"],
            body,
            field_validation="Strict",
            _request_timeout=kube.timeout,
        )
    return True


def _delete(kube: Kube, obj: Manifest) -> None:
    meta = obj["metadata"]
    try:
        with calling(f"deleting {describe(obj)}"):
            kube.custom.delete_namespaced_custom_object(
                GROUP,
                VERSION,
                meta["namespace"],
                _plural(obj["kind"]),
                meta["name"],
                _request_timeout=kube.timeout,
            )
    except NotFound:
        pass


def _read_service(kube: Kube, namespace: str, service: str) -> V1Service:
    require_namespace(kube, namespace)
    return require_service(kube, namespace, service)


def _require_ingress(kube: Kube) -> IngressGateway:
    ingress = read_ingress_gateway(kube)
    if ingress is None:
        raise NotFound(
            f"there is no ingress gateway (a Service labelled istio=ingressgateway in {ISTIO_NAMESPACE}) "
            "to expose through: install Istio with the demo or default profile"
        )
    return ingress


def expose(
    kube: Kube,
    namespace: str,
    service: str,
    host: str,
    *,
    port: int | None = None,
    name: str | None = None,
) -> Exposure:
    """Routes `http://<host>/` through the ingress gateway to `service` (Gateway `<name>-gateway`
    and VirtualService `<name>`, as in the write-up), unless someone else already serves the host."""
    host = validate_host(host)
    name = name or default_name(host)
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) or len(gateway_name(name)) > 63:
        raise ExposeOptionError(
            f"name {name!r} is not a valid name: use at most {63 - len(_GATEWAY_SUFFIX)} lower-case "
            "letters, digits and '-', starting and ending with a letter or digit"
        )
    target_port = choose_port(_read_service(kube, namespace, service), port)
    ingress = _require_ingress(kube)
    gateway = gateway_manifest(gateway_name(name), namespace, host)
    route = virtualservice_manifest(name, namespace, host, gateway_name(name), service, target_port)
    current_gateway = _plan(gateway, list_istio_objects(kube, "Gateway"), host)
    current_route = _plan(route, list_istio_objects(kube, "VirtualService"), host)

    written = []
    if _write(kube, gateway, current_gateway):
        written.append(describe(gateway))
    try:
        if _write(kube, route, current_route):
            written.append(describe(route))
    except MeshError:
        if current_gateway is None:
            # Leave nothing half-exposed: the Gateway alone would serve the host with no route.
            _delete(kube, gateway)
        raise
    return Exposure(
        host,
        namespace,
        service,
        target_port,
        gateway_name(name),
        name,
        tuple(written),
        gateway_urls(host, ingress),
    )


@dataclass(frozen=True)
class Unexposure:
    host: str
    deleted: tuple[str, ...]
    # Objects for the host meshbot does not manage, left as they were.
    left: tuple[str, ...]


def unexpose(kube: Kube, host: str, *, namespace: str) -> Unexposure:
    """Deletes the meshbot-managed VirtualServices and Gateways for `host` in `namespace`, and
    nothing else: whoever may act in one namespace must not reach into another through a host."""
    host = validate_host(host)
    serving = [
        o for kind in ("VirtualService", "Gateway") for o in list_istio_objects(kube, kind) if serves(o, host)
    ]
    here = [o for o in serving if o.get("metadata", {}).get("namespace") == namespace]
    ours = [o for o in here if is_managed(o)]
    left = tuple(describe(o) for o in here if not is_managed(o))
    if not ours:
        elsewhere = sorted(
            {str(o.get("metadata", {}).get("namespace")) for o in serving if is_managed(o)} - {namespace}
        )
        if elsewhere:
            raise NotFound(
                f"meshbot has not exposed {host} in namespace {namespace}; it did in "
                f"{', '.join(elsewhere)}: name that namespace (`unexpose {host} -n {elsewhere[0]}`)"
            )
        others = f"; it is served by {', '.join(left)}, which meshbot does not manage" if left else ""
        raise NotFound(f"meshbot has not exposed {host} in namespace {namespace}{others}")
    # Routes first, so no moment exists where a route points at a deleted Gateway.
    for obj in ours:
        _delete(kube, obj)
    return Unexposure(host, tuple(describe(o) for o in ours), left)
