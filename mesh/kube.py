"""Connecting to a cluster with the official client: kubeconfig (KUBECONFIG, context) or in-cluster."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import kubernetes.client
import kubernetes.config
from kubernetes.config.config_exception import ConfigException

from mesh.errors import MeshError

# Every call carries a timeout: a hung API server must not hang a chat command.
DEFAULT_TIMEOUT_SECONDS = 10.0
# The client's default pool (5 per CPU) is smaller than the lifecycle's worker threads; past
# it urllib3 opens and drops extra connections on every burst of expiries.
CONNECTION_POOL_SIZE = 32


@dataclass
class Kube:
    """The typed API groups meshbot uses, sharing one ApiClient (one connection pool)."""

    api_client: kubernetes.client.ApiClient
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    @property
    def core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self.api_client)

    @property
    def apps(self) -> kubernetes.client.AppsV1Api:
        return kubernetes.client.AppsV1Api(self.api_client)

    @property
    def batch(self) -> kubernetes.client.BatchV1Api:
        return kubernetes.client.BatchV1Api(self.api_client)

    @property
    def custom(self) -> kubernetes.client.CustomObjectsApi:
        return kubernetes.client.CustomObjectsApi(self.api_client)

    @property
    def coordination(self) -> kubernetes.client.CoordinationV1Api:
        return kubernetes.client.CoordinationV1Api(self.api_client)

    @property
    def host(self) -> str:
        return str(self.api_client.configuration.host)

    def close(self) -> None:
        self.api_client.close()


def connect(*, kubeconfig: str | Path | None = None, context: str | None = None) -> Kube:
    """A client for the configured cluster: an explicit kubeconfig, $KUBECONFIG, ~/.kube/config,
    or the in-cluster service account, in that order."""
    configuration = kubernetes.client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    default_path = Path.home() / ".kube" / "config"
    try:
        if path or default_path.exists():
            kubernetes.config.load_kube_config(
                config_file=str(path or default_path),
                context=context,
                client_configuration=configuration,
            )
        else:
            kubernetes.config.load_incluster_config(client_configuration=configuration)
    except ConfigException as exc:
        raise MeshError(f"cannot load the Kubernetes configuration: {exc}") from None
    except FileNotFoundError as exc:
        raise MeshError(f"cannot load the Kubernetes configuration: {exc.filename} not found") from None
    configuration.connection_pool_maxsize = CONNECTION_POOL_SIZE
    return Kube(kubernetes.client.ApiClient(configuration))


def for_url(url: str, *, token: str | None = None) -> Kube:
    """A client for an API server by URL (the playground, or tests), ignoring proxy settings."""
    configuration = kubernetes.client.Configuration()
    configuration.host = url
    configuration.proxy = None
    configuration.connection_pool_maxsize = CONNECTION_POOL_SIZE
    if token:
        configuration.api_key = {"authorization": f"Bearer {token}"}
    return Kube(kubernetes.client.ApiClient(configuration))


def unreachable(kube: Kube, *, timeout: float) -> str | None:
    """Why the API server cannot be used right now (for readiness), or None when it answers."""
    try:
        kubernetes.client.VersionApi(kube.api_client).get_code(_request_timeout=timeout)
    except Exception as exc:
        # Any failure means "not ready"; its class is enough for the probe's one line.
        return f"cannot reach the Kubernetes API at {kube.host}: {exc.__class__.__name__}"
    return None
