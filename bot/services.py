"""The composition root: settings in, a ready Pipeline out (store, cluster client, policy, installer).

Built where a process starts (CLI command, app lifespan), never at import time, so tests can build
their own from a playground and a temporary database.
"""

from __future__ import annotations

import os

from bot.pipeline import Pipeline
from core.policy import load_policy
from core.settings import Settings
from core.store import open_store
from mesh.install import Installer, IstioctlInstaller, JobInstaller
from mesh.kube import Kube, connect


def build_installer(settings: Settings, kube: Kube, *, kubeconfig: str | None = None) -> Installer:
    if settings.installer == "job":
        return JobInstaller(
            kube,
            namespace=settings.installer_namespace,
            image=f"docker.io/istio/istioctl:{settings.istio_version}",
            service_account=settings.installer_service_account,
            timeout=settings.install_timeout_seconds,
        )
    return IstioctlInstaller(
        kube,
        binary=settings.istioctl_path,
        timeout=settings.install_timeout_seconds,
        kubeconfig=kubeconfig,
        context=settings.kube_context,
    )


def build_pipeline(settings: Settings) -> Pipeline:
    """Raises PolicyError, StoreError or MeshError with one line saying what to fix."""
    policy = load_policy(settings.policy_file)
    store = open_store(settings.database_url, auto_migrate=settings.auto_migrate)
    try:
        cluster = policy.clusters.get(policy.default_cluster)
        kubeconfig = (
            str(cluster.kubeconfig) if cluster and cluster.kubeconfig else os.environ.get("KUBECONFIG")
        )
        kube = connect(
            kubeconfig=kubeconfig,
            context=settings.kube_context or (cluster.context if cluster else None),
        )
    except BaseException:
        store.dispose()
        raise
    installer = build_installer(settings, kube, kubeconfig=kubeconfig)
    return Pipeline(
        store=store,
        kube=kube,
        policy=policy,
        cluster=policy.default_cluster,
        services={"installer": installer},
    )
