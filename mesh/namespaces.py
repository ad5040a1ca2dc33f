"""Namespace and service look-ups that many operations start with."""

from __future__ import annotations

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from mesh.errors import NotFound, from_api, from_transport
from mesh.kube import Kube


def require_namespace(kube: Kube, namespace: str) -> None:
    try:
        kube.core.read_namespace(namespace, _request_timeout=kube.timeout)
    except ApiException as exc:
        if exc.status == 404:
            raise NotFound(f"namespace {namespace} does not exist") from None
        raise from_api(exc, f"reading namespace {namespace}") from None
    except (HTTPError, OSError) as exc:
        raise from_transport(exc, f"reading namespace {namespace}") from None


def service_names(kube: Kube, namespace: str) -> list[str]:
    try:
        services = kube.core.list_namespaced_service(namespace, _request_timeout=kube.timeout)
    except ApiException as exc:
        raise from_api(exc, f"listing services in {namespace}") from None
    except (HTTPError, OSError) as exc:
        raise from_transport(exc, f"listing services in {namespace}") from None
    return sorted(str(s.metadata.name) for s in services.items if s.metadata is not None)
