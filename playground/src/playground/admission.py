"""What happens to an object between validation and storage: defaulting, allocation, mutation.

Defaults follow upstream closely enough for the official client's typed models and for kubectl's
printers; the Istio sidecar injector (a mutating webhook in a real cluster) is in `istio_sim`.
"""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

from playground import istio_sim
from playground.api import ClusterApi
from playground.meta import Obj, dig
from playground.resources import ResourceType

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
NODE_PORTS = range(30000, 32768)


def on_create(api: ClusterApi, rtype: ResourceType, obj: Obj) -> None:
    handler = _CREATE.get(rtype.key)
    if handler is not None:
        handler(api, obj)


def on_update(api: ClusterApi, rtype: ResourceType, old: Obj, new: Obj) -> None:
    if rtype.key == ("", "services"):
        spec, old_spec = new.setdefault("spec", {}), old.get("spec", {})
        for kept in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if kept in old_spec and not spec.get(kept):
                spec[kept] = old_spec[kept]
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in old_spec.get("ports", [])}
        _default_service_ports(api, new, old_ports)
    elif rtype.key == ("", "namespaces"):
        new["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = new["metadata"]["name"]
    elif rtype.key in (("apps", "deployments"), ("apps", "replicasets")):
        _default_pod_spec(dig(new, "spec", "template", "spec", default={}))
    elif rtype.key == ("", "secrets"):
        _secret(api, new)


def _namespace(api: ClusterApi, obj: Obj) -> None:
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    obj["spec"] = {"finalizers": ["kubernetes"]}
    obj["status"] = {"phase": "Active"}


def _default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        image = str(container.get("image", ""))
        pull = (
            "Always" if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1] else "IfNotPresent"
        )
        container.setdefault("imagePullPolicy", pull)
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        for port in container.get("ports", []):
            port.setdefault("protocol", "TCP")


def _pod(api: ClusterApi, obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    istio_sim.inject_sidecar(api, obj)
    _default_pod_spec(spec)
    obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}


def _deployment(api: ClusterApi, obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    spec.setdefault(
        "strategy",
        {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
    )
    _default_pod_spec(dig(spec, "template", "spec", default={}))
    obj["status"] = {}


def _replicaset(api: ClusterApi, obj: Obj) -> None:
    obj.setdefault("spec", {}).setdefault("replicas", 1)
    _default_pod_spec(dig(obj, "spec", "template", "spec", default={}))
    obj["status"] = {"replicas": 0}


def _job(api: ClusterApi, obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    uid = obj["metadata"]["uid"]
    name = obj["metadata"]["name"]
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completions", 1)
    spec.setdefault("parallelism", 1)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    template_meta = spec.setdefault("template", {}).setdefault("metadata", {})
    template_meta.setdefault("labels", {}).update(
        {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }
    )
    obj["metadata"].setdefault("labels", {}).update(
        {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name}
    )
    _default_pod_spec(dig(spec, "template", "spec", default={}))
    obj["status"] = {}


def _secret(api: ClusterApi, obj: Obj) -> None:
    obj.setdefault("type", "Opaque")
    # stringData is write-only: upstream folds it into data (base64, winning over data's keys).
    string_data = obj.pop("stringData", None) or {}
    if string_data:
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _used_cluster_ips(api: ClusterApi) -> set[str]:
    services, _ = api.store.list(("", "services"))
    return {str(dig(s, "spec", "clusterIP")) for s in services}


def _used_node_ports(api: ClusterApi) -> set[int]:
    services, _ = api.store.list(("", "services"))
    return {
        int(p["nodePort"]) for s in services for p in dig(s, "spec", "ports", default=[]) if "nodePort" in p
    }


def _service(api: ClusterApi, obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName":
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        if not spec.get("clusterIP"):
            used = _used_cluster_ips(api)
            hosts = SERVICE_CIDR.hosts()
            next(hosts)  # 10.96.0.1 belongs to the `kubernetes` service
            while True:
                candidate = str(SERVICE_CIDR[api.random.randrange(2, SERVICE_CIDR.num_addresses - 1)])
                if candidate not in used:
                    break
            spec["clusterIP"] = candidate
        if spec["clusterIP"] != "None":
            spec["clusterIPs"] = [spec["clusterIP"]]
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    _default_service_ports(api, obj, {})
    obj["status"] = {"loadBalancer": {}}


def _default_service_ports(api: ClusterApi, obj: Obj, previous: dict[Any, Obj]) -> None:
    spec = obj["spec"]
    wants_node_port = spec.get("type") in ("NodePort", "LoadBalancer")
    used = _used_node_ports(api) if wants_node_port else set()
    for port in spec.get("ports", []):
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
        if wants_node_port and "nodePort" not in port:
            before = previous.get((port.get("port"), port["protocol"]), {})
            if "nodePort" in before:
                port["nodePort"] = before["nodePort"]
                continue
            candidate = next(p for p in NODE_PORTS if p not in used)
            used.add(candidate)
            port["nodePort"] = candidate


_CREATE = {
    ("", "namespaces"): _namespace,
    ("", "pods"): _pod,
    ("", "services"): _service,
    ("apps", "deployments"): _deployment,
    ("apps", "replicasets"): _replicaset,
    ("batch", "jobs"): _job,
    ("", "secrets"): _secret,
}
