"""Which cluster a command acts on: one client per cluster the policy names.

The policy's ``clusters:`` map names to a kubeconfig and context; its ``default_cluster`` is used
when nothing else is said. Without a map the default cluster is whatever the process is
configured for ($KUBECONFIG, ~/.kube/config, or in-cluster). Clients are built when first asked
for, so a command on one cluster never waits for, or fails because of, another cluster's
configuration.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from core.policy import ClusterConfig
from mesh.errors import MeshError
from mesh.kube import Kube, connect


class UnknownCluster(MeshError):
    """A cluster name nobody configured: refused before anything is sent anywhere."""


Connector = Callable[..., Kube]


class Clusters:
    def __init__(
        self,
        configs: Mapping[str, ClusterConfig],
        *,
        default: str,
        context: str | None = None,
        connector: Connector = connect,
    ) -> None:
        self.default = default
        self._configs = dict(configs)
        # MESHBOT_KUBE_CONTEXT overrides the default cluster's context only: it names one context.
        self._context = context
        self._connector = connector
        self._kubes: dict[str, Kube] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, kubes: Mapping[str, Kube], *, default: str) -> Clusters:
        """Clusters whose clients already exist (a playground, a test's API servers)."""
        clusters = cls({}, default=default)
        clusters._kubes.update(kubes)
        return clusters

    @property
    def names(self) -> list[str]:
        return sorted({self.default, *self._configs, *self._kubes})

    def knows(self, name: str) -> bool:
        return name in self.names

    def kube(self, name: str | None = None) -> Kube:
        """The client for ``name`` (the default cluster when None); UnknownCluster when not configured."""
        name = name or self.default
        with self._lock:
            existing = self._kubes.get(name)
            if existing is not None:
                return existing
            if not self.knows(name):
                raise UnknownCluster(f"unknown cluster {name}; configured clusters: {', '.join(self.names)}")
            kube = self._connect(name)
            self._kubes[name] = kube
            return kube

    def connected(self) -> dict[str, Kube]:
        """The clients built so far (what readiness and the reaper look at)."""
        with self._lock:
            return dict(self._kubes)

    def close(self) -> None:
        with self._lock:
            kubes, self._kubes = list(self._kubes.values()), {}
        for kube in kubes:
            kube.close()

    def kubeconfig_of(self, name: str | None = None) -> str | None:
        """The kubeconfig file a cluster is reached through (istioctl needs the path itself)."""
        config = self._configs.get(name or self.default)
        if config is not None and config.kubeconfig:
            return str(config.kubeconfig)
        return os.environ.get("KUBECONFIG") if (name or self.default) == self.default else None

    def _connect(self, name: str) -> Kube:
        config = self._configs.get(name)
        context = config.context if config else None
        if name == self.default and self._context:
            context = self._context
        path: str | Path | None = self.kubeconfig_of(name)
        return self._connector(kubeconfig=path, context=context)
