"""Namespace and service look-ups that many operations start with."""

from __future__ import annotations

from kubernetes.client import V1Service

from mesh.errors import NotFound, calling
from mesh.kube import Kube


def require_namespace(kube: Kube, namespace: str) -> None:
    try:
        with calling(f"reading namespace {namespace}"):
            kube.core.read_namespace(namespace, _request_timeout=kube.timeout)
    except NotFound:
        raise NotFound(f"namespace {namespace} does not exist") from None


def service_names(kube: Kube, namespace: str) -> list[str]:
    with calling(f"listing the services in namespace {namespace}"):
        services = kube.core.list_namespaced_service(namespace, _request_timeout=kube.timeout)
    return sorted(str(s.metadata.name) for s in services.items if s.metadata and s.metadata.name)


def require_service(kube: Kube, namespace: str, service: str) -> V1Service:
    """The Service, or NotFound naming the services that do exist (a typo is the usual cause)."""
    try:
        with calling(f"reading service {service} in namespace {namespace}"):
            found: V1Service = kube.core.read_namespaced_service(
                service, namespace, _request_timeout=kube.timeout
            )
    except NotFound:
        names = service_names(kube, namespace)
        there = f"services there: {', '.join(names)}" if names else "it has no services (does it exist?)"
        raise NotFound(f"there is no service {service} in namespace {namespace}; {there}") from None
    return found


def names_to_complete(kube: Kube) -> list[str]:
    """Every namespace, and every service as `<service>` and `<service>.<namespace>`: what a
    person types after a verb (for the prompt's completion)."""
    with calling("listing namespaces and services"):
        namespaces = kube.core.list_namespace(_request_timeout=kube.timeout)
        services = kube.core.list_service_for_all_namespaces(_request_timeout=kube.timeout)
    names = {str(n.metadata.name) for n in namespaces.items if n.metadata and n.metadata.name}
    for service in services.items:
        if service.metadata and service.metadata.name:
            names.add(str(service.metadata.name))
            names.add(f"{service.metadata.name}.{service.metadata.namespace}")
    return sorted(names)
