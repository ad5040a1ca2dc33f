"""The composition root: settings in, a ready Pipeline out (store, clusters, policy, installers).

Built where a process starts (CLI command, app lifespan), never at import time, so tests can build
their own from a playground and a temporary database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.leadership import LeaderWatch
from bot.pipeline import Pipeline
from core.policy import Policy, load_policy
from core.settings import Settings
from core.store import AuditKey, open_store
from handlers import VERBS
from mesh.clusters import Clusters
from mesh.install import Installer, IstioctlInstaller, JobInstaller
from mesh.kube import Kube, LazyKube

# Telemetry's clients (requests, prometheus_api_client) are imported only where one is configured.
if TYPE_CHECKING:
    from mesh.kiali import Kiali
    from mesh.prometheus import Prometheus


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


def build_kiali(settings: Settings) -> Kiali | None:
    if not settings.kiali_url:
        return None
    from mesh.kiali import Kiali

    token = settings.kiali_token.get_secret_value() if settings.kiali_token else None
    # Kiali sits beside Prometheus: the same TLS and time-out settings hold for both.
    return Kiali(
        settings.kiali_url,
        token=token,
        timeout=settings.prometheus_timeout_seconds,
        verify_tls=settings.prometheus_verify_tls,
    )


def build_prometheus(settings: Settings) -> Prometheus | None:
    if not settings.prometheus_url:
        return None
    from mesh.prometheus import Prometheus

    password = settings.prometheus_password
    return Prometheus(
        settings.prometheus_url,
        token=settings.prometheus_token.get_secret_value() if settings.prometheus_token else None,
        basic_auth=(settings.prometheus_username, password.get_secret_value() if password else "")
        if settings.prometheus_username
        else None,
        verify_tls=settings.prometheus_verify_tls,
        timeout=settings.prometheus_timeout_seconds,
    )


def clusters_of(policy: Policy, settings: Settings) -> Clusters:
    """The clusters the policy names (its default one at least), not yet connected."""
    return Clusters(policy.clusters, default=policy.default_cluster, context=settings.kube_context)


def build_pipeline(settings: Settings, *, lazy: bool = False) -> Pipeline:
    """Raises PolicyError, StoreError or MeshError with one line saying what to fix.

    ``lazy``: connect to the default cluster when a command first needs it (a one-shot CLI,
    where ``audit`` must work without a cluster); otherwise now, so a long-running service with a
    broken configuration says so at start-up; a service imports every verb's module now too, so
    no first command waits for one."""
    policy = load_policy(settings.policy_file)
    if not lazy:
        VERBS.load_all()
    store = open_store(
        settings.database_url,
        auto_migrate=settings.auto_migrate,
        audit_key=AuditKey.from_setting(settings.audit_key),
    )
    clusters = clusters_of(policy, settings)
    try:
        kube: Kube = LazyKube(clusters.kube) if lazy else clusters.kube()
    except BaseException:
        store.dispose()
        raise
    if not lazy:
        kube.warm()

    def installer_for(name: str, cluster_kube: Kube) -> Installer:
        return build_installer(settings, cluster_kube, kubeconfig=clusters.kubeconfig_of(name))

    return Pipeline(
        store=store,
        kube=kube,
        policy=policy,
        cluster=policy.default_cluster,
        clusters=clusters,
        installer_for=installer_for,
        # Whoever starts a lifecycle in this process tells the watch (watch.local).
        leadership=LeaderWatch(kube, settings),
        prometheus=build_prometheus(settings),
        kiali=build_kiali(settings),
    )
