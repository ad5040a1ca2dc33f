"""The composition root: settings in, a ready Pipeline out (store, cluster client, policy, installer).

Built where a process starts (CLI command, app lifespan), never at import time, so tests can build
their own from a playground and a temporary database.
"""

from __future__ import annotations

from bot.pipeline import Pipeline
from bot.policy import load_policy
from bot.settings import Settings
from bot.store import open_store
from mesh.kube import connect


def build_pipeline(settings: Settings) -> Pipeline:
    """Raises PolicyError, StoreError or MeshError with one line saying what to fix."""
    policy = load_policy(settings.policy_file)
    store = open_store(settings.database_url, auto_migrate=settings.auto_migrate)
    try:
        cluster = policy.clusters.get(policy.default_cluster)
        kube = connect(
            kubeconfig=cluster.kubeconfig if cluster else None,
            context=settings.kube_context or (cluster.context if cluster else None),
        )
    except BaseException:
        store.dispose()
        raise
    return Pipeline(store=store, kube=kube, policy=policy, cluster=policy.default_cluster)
