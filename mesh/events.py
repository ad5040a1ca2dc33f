"""Kubernetes Events on what meshbot changes, so `kubectl describe vs|ns` tells a cluster operator
who injected a fault and when it ends without access to meshbot's audit log.

Recording is best effort: an Event is a courtesy to the operator, never part of the change, so a
failure (say, RBAC without `create` on events) is logged and the command goes on.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime

from kubernetes.client import CoreV1Event, V1EventSource, V1ObjectMeta, V1ObjectReference

from mesh.kube import Kube

log = logging.getLogger(__name__)

COMPONENT = "meshbot"
_VS_API_VERSION = "networking.istio.io/v1"


def _instance() -> str:
    # A pod's hostname is its name: which replica acted.
    return os.environ.get("HOSTNAME") or socket.gethostname()


def record(
    kube: Kube,
    *,
    namespace: str,
    kind: str,
    name: str,
    api_version: str,
    reason: str,
    note: str,
    type_: str = "Normal",
) -> None:
    """Creates one core/v1 Event about `kind/name` (what `kubectl describe` and `get events` read)."""
    try:
        _create(kube, namespace, kind, name, api_version, reason, note, type_)
    except Exception as exc:  # any failure: the change it reports has been made all the same
        log.warning("could not record Event %s on %s %s/%s: %s", reason, kind, namespace, name, exc)


def _uid(kube: Kube, namespace: str, kind: str, name: str) -> str | None:
    # `kubectl describe` selects an object's Events by its uid too, so the reference needs it.
    if kind == "Namespace":
        meta = kube.core.read_namespace(name, _request_timeout=kube.timeout).metadata
        return meta.uid if meta is not None else None
    group, version = _VS_API_VERSION.split("/")
    vs = kube.custom.get_namespaced_custom_object(
        group, version, namespace, "virtualservices", name, _request_timeout=kube.timeout
    )
    return str(vs["metadata"]["uid"]) if isinstance(vs, dict) else None


def _create(
    kube: Kube, namespace: str, kind: str, name: str, api_version: str, reason: str, note: str, type_: str
) -> None:
    # Event timestamps are whole seconds (metav1.Time).
    now = datetime.now(UTC).replace(microsecond=0)
    event = CoreV1Event(
        metadata=V1ObjectMeta(generate_name=f"{name}.", namespace=namespace),
        involved_object=V1ObjectReference(
            api_version=api_version,
            kind=kind,
            name=name,
            namespace=namespace if kind != "Namespace" else None,
            uid=_uid(kube, namespace, kind, name),
        ),
        reason=reason,
        message=note,
        type=type_,
        count=1,
        first_timestamp=now,
        last_timestamp=now,
        source=V1EventSource(component=COMPONENT),
        reporting_component=COMPONENT,
        reporting_instance=_instance(),
    )
    kube.core.create_namespaced_event(namespace, event, _request_timeout=kube.timeout)


def on_virtual_service(kube: Kube, namespace: str, name: str, reason: str, note: str) -> None:
    record(
        kube,
        namespace=namespace,
        kind="VirtualService",
        name=name,
        api_version=_VS_API_VERSION,
        reason=reason,
        note=note,
    )


def on_namespace(kube: Kube, namespace: str, reason: str, note: str) -> None:
    record(
        kube,
        namespace=namespace,
        kind="Namespace",
        name=namespace,
        api_version="v1",
        reason=reason,
        note=note,
    )
