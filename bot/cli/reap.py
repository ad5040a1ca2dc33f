"""``meshbot reap``: the dead man's switch — one pass removing every expired fault from the cluster.

It needs only the cluster: every fault meshbot injects carries its expiry in the VirtualService's
``meshbot.dev/faults`` annotation. A CronJob runs it every minute (deploy/reaper-cronjob.yaml), so
faults end even when the service, its scheduler or its database is gone. With the database
reachable it also ends the experiments there and audits; without, it reverts all the same and
says so.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from bot.compose import clusters_of
from bot.lifecycle.reaper import reap as reap_pass
from bot.settings_cli import load_settings
from core.durations import DurationError, duration
from core.policy import PolicyError, load_policy
from core.settings import Settings
from core.store import AuditKey, Store, StoreError, open_store
from mesh.errors import MeshError
from mesh.kube import Kube

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def connect_cluster(settings: Settings, cluster: str | None) -> Kube:
    """One cluster of the policy (its default unless named), without opening the store as
    build_pipeline does first: the reaper must work with the database gone."""
    return clusters_of(load_policy(settings.policy_file), settings).kube(cluster)


def open_store_if_reachable(settings: Settings) -> tuple[Store | None, str | None]:
    try:
        return open_store(
            settings.database_url, auto_migrate=False, audit_key=AuditKey.from_setting(settings.audit_key)
        ), None
    except StoreError as exc:
        return None, str(exc)


def reap(
    grace: Annotated[
        str, typer.Option(help="Leave faults expired less than this long ago to the service's own jobs.")
    ] = "10s",
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="Only this namespace.")] = None,
    cluster: Annotated[
        str | None, typer.Option(help="Which cluster of the policy (its default_cluster unless given).")
    ] = None,
) -> None:
    """Remove every expired fault from the cluster (one pass), with or without the database."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        leeway = duration(grace, what="grace") if grace not in ("0", "0s") else timedelta(0)
    except DurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    settings = load_settings()
    try:
        kube = connect_cluster(settings, cluster)
    except (PolicyError, MeshError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    store, why = open_store_if_reachable(settings)
    if store is None:
        typer.echo(f"warning: reaping without the database: {why}", err=True)
    try:
        report = reap_pass(
            kube,
            store,
            now=datetime.now(UTC),
            grace=leeway,
            namespace=namespace,
            cluster=cluster or load_policy(settings.policy_file).default_cluster,
        )
    except MeshError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    finally:
        if store is not None:
            store.dispose()
        kube.close()
    if store is None:
        report.database_error = why
    for line in report.lines():
        typer.echo(line, err=line.startswith("could not"))
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)
