"""`status [namespace]`: one screen — control plane, injected namespaces, exposed hosts, faults."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from core.durations import human_duration
from core.store import list_active, list_failed
from core.values import Target
from handlers import parse
from handlers.context import Context
from handlers.errors import UsageError
from handlers.reply import Reply
from handlers.verb import READS, Access
from mesh.overview import mesh_overview
from mesh.virtualservices import list_marked_faults

VERB = "status"
HELP = "control plane, sidecar coverage, exposed hosts and active faults"
USAGE = "status [<namespace>]"


def rules(command: StatusCommand) -> Access:
    return READS


@dataclass(frozen=True)
class StatusCommand:
    namespace: str | None


def parse_args(args: list[str]) -> StatusCommand:
    try:
        if len(args) > 1:
            raise parse.ParseError("status shows one namespace or all")
        return StatusCommand(parse.name(args[0], what="namespace") if args else None)
    except parse.ParseError as exc:
        raise UsageError(str(exc), USAGE) from None


def handle(command: StatusCommand, ctx: Context) -> Reply:
    overview = mesh_overview(ctx.kube, command.namespace)
    plane = overview.control_plane
    lines = [f"Cluster *{ctx.cluster}* ({ctx.kube.host})", "*Control plane*"]
    if not plane.installed:
        lines.append("Istio is not installed (`install` installs it).")
    for c in plane.components:
        version = f" {c.version}" if c.version else ""
        lines.append(f"{'✔' if c.healthy else '✖'} {c.name} {c.ready_text}{version}")
    lines.append("*Sidecar injection*")
    if not overview.injection:
        lines.append("No namespace is labelled for injection.")
    for ns in overview.injection:
        label = "enabled" if ns.injection_enabled else "not labelled"
        missing = f" — without sidecar: {', '.join(ns.without_sidecar)}" if ns.without_sidecar else ""
        lines.append(f"• {ns.namespace} ({label}): {ns.coverage_text} pods with a sidecar{missing}")
    lines.append("*Exposed hosts*")
    if not overview.exposed:
        lines.append("None.")
    for host in overview.exposed:
        to = ", ".join(host.destinations) or "no route yet"
        lines.append(f"• {host.host} → {to} (gateways {', '.join(host.gateways)})")
    lines.append("*Active faults*")
    with ctx.store.read() as session:
        active = list_active(session=session, cluster=ctx.cluster, namespace=command.namespace)
        now = ctx.now()
        for e in active:
            left = (e.expires_at - now) if e.expires_at else None
            when = (
                f"{human_duration(timedelta(seconds=int(left.total_seconds())))} left"
                if left and left.total_seconds() >= 1
                else "overdue"
            )
            lines.append(f"• {e.id} {e.kind} on {e.service}.{e.namespace} — {when} ({e.state})")
        if not active:
            lines.append("None.")
        failed = list_failed(session=session, cluster=ctx.cluster, namespace=command.namespace)
        failed_rows = [(e.id, e.kind, e.service, e.namespace, e.detail) for e in failed]
    # A failed revert can leave a fault in the cluster: show it while the cluster still carries it.
    still_there = (
        {m.experiment_id for m in list_marked_faults(ctx.kube, command.namespace)} if failed_rows else set()
    )
    stuck = [row for row in failed_rows if row[0] in still_there]
    if stuck:
        lines.append("*Needs a person*")
        for experiment_id, kind, service, namespace, detail in stuck:
            lines.append(
                f"✖ {experiment_id} {kind} on {service}.{namespace}: revert failed, still in the cluster "
                f"({detail or 'no detail'}); retrying — or `fault clear {experiment_id}`"
            )
    return Reply("\n".join(lines), target=Target(cluster=ctx.cluster, namespace=command.namespace))
