"""`status [namespace]`: one screen — control plane, injected namespaces, exposed hosts, faults."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from core.durations import human_duration
from core.values import Target
from domain.live import describe_fault, live_faults, state_of
from handlers import parse
from handlers.context import Context
from handlers.errors import UsageError
from handlers.reply import Reply
from handlers.telemetry_text import latency, percent
from handlers.verb import READS, Access
from mesh.errors import MeshError
from mesh.overview import ExposedHost, NamespaceCoverage, mesh_overview
from mesh.prometheus import TelemetryUnavailable

VERB = "status"
HELP = "control plane, sidecar coverage, exposed hosts and active faults"
USAGE = "status [<namespace>]"
# Beyond this many namespaces, hosts or faults a section is summarised: a chat message of hundreds
# of lines is not read (and Slack splits it into several).
MAX_LINES = 20
MAX_PODS = 10


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
    lines = [f"Cluster *{ctx.cluster}* ({ctx.kube.host})", *_lifecycle_lines(ctx), "*Control plane*"]
    if not plane.installed:
        lines.append("Istio is not installed (`install` installs it).")
    for c in plane.components:
        version = f" {c.version}" if c.version else ""
        lines.append(f"{'✔' if c.healthy else '✖'} {c.name} {c.ready_text}{version}")
    lines.append("*Sidecar injection*")
    if not overview.injection:
        lines.append("No namespace is labelled for injection.")
    lines.extend(_injection_lines(overview.injection))
    lines.append("*Exposed hosts*")
    if not overview.exposed:
        lines.append("None.")
    for host in overview.exposed[:MAX_LINES]:
        to = ", ".join(host.destinations) or "no route yet"
        lines.append(f"• {host.host} → {to} (gateways {', '.join(host.gateways)})")
    lines.extend(_more(len(overview.exposed), "hosts", "`status <namespace>` shows one namespace's"))
    lines.extend(_golden_lines(ctx, overview.exposed[:MAX_LINES]))
    lines.append("*Active faults*")
    view = live_faults(ctx.store, ctx.kube, cluster=ctx.cluster, namespace=command.namespace)
    now = ctx.now()
    # Soonest expiry first: those are the ones a person may want to extend or look at.
    shown = sorted(view.faults, key=lambda f: (f.experiment.expires_at is None, f.experiment.expires_at))
    for fault in shown[:MAX_LINES]:
        e = fault.experiment
        left = (e.expires_at - now) if e.expires_at else None
        when = (
            f"{human_duration(timedelta(seconds=int(left.total_seconds())))} left"
            if left and left.total_seconds() >= 1
            else "overdue"
        )
        disagreement = state_of(fault)
        suffix = f" — {disagreement}" if disagreement else ""
        lines.append(
            f"• {e.id} {describe_fault(e)} on {e.service}.{e.namespace} — {when} ({e.state}){suffix}"
        )
    lines.extend(_more(len(view.faults), "faults", "`fault list` shows all"))
    for mark in view.unrecorded:
        lines.append(
            f"• {mark.experiment_id} in {mark.namespace}: in the cluster with no live record in meshbot's "
            f"store; removed at its expiry ({mark.expires:%H:%M:%S} UTC)"
        )
    if not view.faults and not view.unrecorded:
        lines.append("None.")
    if view.stuck:
        # A failed revert can leave a fault in the cluster: show it while the cluster still carries it.
        lines.append("*Needs a person*")
        for e in view.stuck:
            lines.append(
                f"✖ {e.id} {e.kind} on {e.service}.{e.namespace}: revert failed, still in the cluster "
                f"({e.detail or 'no detail'}); retrying — or `fault clear {e.id}`"
            )
    data = {
        "exposed": [
            {"host": h.host, "destinations": list(h.destinations), "gateways": list(h.gateways)}
            for h in overview.exposed
        ],
        "faults": [
            {
                "experiment_id": f.experiment.id,
                "kind": f.experiment.kind,
                "service": f.experiment.service,
                "namespace": f.experiment.namespace,
                "state": f.experiment.state,
                "expires_at": f.experiment.expires_at.isoformat() if f.experiment.expires_at else None,
            }
            for f in view.faults
        ],
        "unrecorded": [m.experiment_id for m in view.unrecorded],
        "stuck": [e.id for e in view.stuck],
    }
    return Reply("\n".join(lines), target=Target(cluster=ctx.cluster, namespace=command.namespace), data=data)


def _injection_lines(injection: tuple[NamespaceCoverage, ...]) -> list[str]:
    """A line per namespace on a small mesh; on a large one (50 namespaces would be 50 lines in
    Slack) the totals, and only the namespaces with pods lacking a sidecar."""
    lines: list[str] = []
    if len(injection) > MAX_LINES:
        pods = sum(ns.pods for ns in injection)
        covered = sum(ns.with_sidecar for ns in injection)
        lacking = [ns for ns in injection if ns.without_sidecar]
        lines.append(
            f"{len(injection)} namespaces labelled: {covered}/{pods} pods with a sidecar; "
            f"{len(lacking) or 'no'} namespace{'' if len(lacking) == 1 else 's'} with pods lacking one"
        )
        injection = tuple(lacking)
    for ns in injection[:MAX_LINES]:
        label = "enabled" if ns.injection_enabled else "not labelled"
        missing = ns.without_sidecar
        listed = ", ".join(missing[:MAX_PODS]) + (
            f" and {len(missing) - MAX_PODS} more" if len(missing) > MAX_PODS else ""
        )
        without = f" — without sidecar: {listed}" if missing else ""
        lines.append(f"• {ns.namespace} ({label}): {ns.coverage_text} pods with a sidecar{without}")
    lines.extend(_more(len(injection), "namespaces", "`status <namespace>` shows one"))
    return lines


def _more(count: int, what: str, hint: str) -> list[str]:
    return [f"… and {count - MAX_LINES} more {what} ({hint})"] if count > MAX_LINES else []


def _lifecycle_lines(ctx: Context) -> list[str]:
    """Who ends faults on time, or that nobody does (and so that faults are refused)."""
    if ctx.leadership is None:
        return []
    try:
        leadership = ctx.leadership()
    except MeshError as exc:
        return [f"⚠ Cannot tell whether a lifecycle leads: {exc}"]
    if leadership.fresh:
        return [f"Faults end on time: the lifecycle is led by {leadership.holder}."]
    return [f"⚠ No lifecycle leads ({leadership.problem}): new faults are refused until one does."]


GOLDEN_WINDOW = "5m"


def _golden_lines(ctx: Context, exposed: tuple[ExposedHost, ...]) -> list[str]:
    """One line of golden signals per exposed service; what is missing when Prometheus is not there."""
    if ctx.prometheus is None or not exposed:
        return []
    services: list[tuple[str, str]] = []
    for host in exposed:
        for destination in host.destinations:
            name, _, rest = destination.partition(":")[0].partition(".")
            key = (name, rest.split(".")[0] or host.namespace)
            if key not in services:
                services.append(key)
    lines = [f"*Golden signals* (last {GOLDEN_WINDOW})"]
    for service, namespace in services:
        try:
            found = ctx.prometheus.services(namespace, GOLDEN_WINDOW, service)
        except TelemetryUnavailable as exc:
            return [*lines, f"⚠ No golden signals: {exc}."]
        if not found:
            lines.append(f"• {service}.{namespace}: no requests reported")
            continue
        s = found[0].signals
        lines.append(
            f"• {service}.{namespace}: {s.requests_per_second:.1f} rps, {percent(s.success_rate)} success, "
            f"p99 {latency(s.latency(0.99))}, {percent(s.fault_share)} faulted"
        )
    return lines
