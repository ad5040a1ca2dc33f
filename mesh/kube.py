"""Connecting to a cluster with the official client: kubeconfig (KUBECONFIG, context) or in-cluster.

The client is imported when a client is built or used, not with this module: importing any of it
runs the package's ``__init__``, which loads every API and model (~0.2 s of CPU), and commands that
never reach the cluster (``help``, ``audit``) import Kube all the same.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mesh.errors import MeshError

if TYPE_CHECKING:
    import kubernetes.client

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

    # The client is loaded already: an ApiClient exists. Its import here is a dictionary look-up.
    @property
    def core(self) -> kubernetes.client.CoreV1Api:
        from kubernetes.client import CoreV1Api

        return CoreV1Api(self.api_client)

    @property
    def apps(self) -> kubernetes.client.AppsV1Api:
        from kubernetes.client import AppsV1Api

        return AppsV1Api(self.api_client)

    @property
    def batch(self) -> kubernetes.client.BatchV1Api:
        from kubernetes.client import BatchV1Api

        return BatchV1Api(self.api_client)

    @property
    def custom(self) -> kubernetes.client.CustomObjectsApi:
        from kubernetes.client import CustomObjectsApi

        return CustomObjectsApi(self.api_client)

    @property
    def coordination(self) -> kubernetes.client.CoordinationV1Api:
        from kubernetes.client import CoordinationV1Api

        return CoordinationV1Api(self.api_client)

    def warm(self) -> None:
        """Load every API group's module now. The client imports each on first use (about 40 ms
        apiece), which a long-running service would otherwise charge to its first fault."""
        import kubernetes.client

        for api in ("CoreV1Api", "AppsV1Api", "BatchV1Api", "CustomObjectsApi", "CoordinationV1Api"):
            getattr(kubernetes.client, api)

    @property
    def host(self) -> str:
        return str(self.api_client.configuration.host)

    def close(self) -> None:
        self.api_client.close()


class LazyKube(Kube):
    """A Kube that connects when first used, so commands that never touch the cluster (``audit``,
    ``help``) work without one, and the others say what is wrong with it as their answer."""

    def __init__(self, connect: Callable[[], Kube], *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self._connect = connect
        self._connected: Kube | None = None
        self._lock = threading.Lock()
        self.timeout = timeout

    @property
    def api_client(self) -> kubernetes.client.ApiClient:
        with self._lock:
            if self._connected is None:
                self._connected = self._connect()
            return self._connected.api_client

    @api_client.setter
    def api_client(self, value: kubernetes.client.ApiClient) -> None:
        with self._lock:
            self._connected = Kube(value, self.timeout)

    def close(self) -> None:
        with self._lock:
            connected, self._connected = self._connected, None
        if connected is not None:
            connected.close()


def connect(*, kubeconfig: str | Path | None = None, context: str | None = None) -> Kube:
    """A client for the configured cluster: an explicit kubeconfig, $KUBECONFIG, ~/.kube/config,
    or the in-cluster service account, in that order. Raises MeshError with one line naming the
    files it looked at and what to do."""
    import kubernetes.client

    configuration = kubernetes.client.Configuration()
    source = _kubeconfig_source(kubeconfig)
    if source is None:
        _load_in_cluster(configuration)
    else:
        _load_kubeconfig(configuration, source, context)
    configuration.connection_pool_maxsize = CONNECTION_POOL_SIZE
    return Kube(kubernetes.client.ApiClient(configuration))


def _kubeconfig_source(kubeconfig: str | Path | None) -> tuple[str, list[Path]] | None:
    """Where the kubeconfig comes from (a phrase naming it, its files), or None for in-cluster."""
    env = os.environ.get("KUBECONFIG")
    if kubeconfig and str(kubeconfig) != env:
        return f"kubeconfig {kubeconfig}", [Path(kubeconfig)]
    if env:
        # KUBECONFIG may list several files, as kubectl reads it.
        return f"KUBECONFIG={env}", [Path(p) for p in env.split(os.pathsep) if p]
    default_path = Path.home() / ".kube" / "config"
    if default_path.exists():
        return f"kubeconfig {default_path}", [default_path]
    return None


def _load_in_cluster(configuration: kubernetes.client.Configuration) -> None:
    import kubernetes.config
    from kubernetes.config.config_exception import ConfigException

    if not os.environ.get("KUBERNETES_SERVICE_HOST"):
        raise MeshError(
            f"no kubeconfig found (KUBECONFIG unset, {Path.home() / '.kube' / 'config'} missing) and not "
            "running in a pod: set KUBECONFIG to a kubeconfig file, or try `meshbot demo` for a playground"
        )
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)
    except ConfigException as exc:
        raise MeshError(
            f"running in a pod, but its service account cannot be read ({exc}): "
            "mount the service account token (automountServiceAccountToken) or set KUBECONFIG"
        ) from None


def _load_kubeconfig(
    configuration: kubernetes.client.Configuration, source: tuple[str, list[Path]], context: str | None
) -> None:
    import kubernetes.config
    import yaml
    from kubernetes.config.config_exception import ConfigException

    where, paths = source
    fix = "fix it, or point KUBECONFIG at a working one (`kubectl config view` reads the same files)"
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise MeshError(f"{where}: no such file {', '.join(missing)}; {fix}")
    try:
        kubernetes.config.load_kube_config(
            config_file=os.pathsep.join(str(p) for p in paths),
            context=context,
            client_configuration=configuration,
        )
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise MeshError(f"{where} is not valid YAML{at}; {fix}") from None
    except ConfigException as exc:
        raise MeshError(f"{where}: {_one_line(exc)}; {fix}") from None
    except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
        # A YAML file that is not a kubeconfig (a list, a string, a field of the wrong type) fails
        # deep inside the loader with whatever Python error it met first.
        raise MeshError(
            f"{where} is not a usable kubeconfig ({exc.__class__.__name__}: {_one_line(exc)}); {fix}"
        ) from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:199] + "…"


def for_url(url: str, *, token: str | None = None) -> Kube:
    """A client for an API server by URL (the playground, or tests), ignoring proxy settings."""
    import kubernetes.client

    configuration = kubernetes.client.Configuration()
    configuration.host = url
    configuration.proxy = None
    configuration.connection_pool_maxsize = CONNECTION_POOL_SIZE
    if token:
        configuration.api_key = {"authorization": f"Bearer {token}"}
    return Kube(kubernetes.client.ApiClient(configuration))


def unreachable(kube: Kube, *, timeout: float) -> str | None:
    """Why the API server cannot be used right now (for readiness), or None when it answers."""
    from kubernetes.client import VersionApi

    try:
        VersionApi(kube.api_client).get_code(_request_timeout=timeout)
    except Exception as exc:
        # Any failure means "not ready"; its class is enough for the probe's one line.
        return f"cannot reach the Kubernetes API at {kube.host}: {exc.__class__.__name__}"
    return None
