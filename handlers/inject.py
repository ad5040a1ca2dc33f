"""`inject <namespace> [--restart]` / `uninject <namespace>`: sidecar injection for a namespace."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import Refused
from core.values import Target
from handlers import parse
from handlers.context import Context
from handlers.errors import UsageError
from handlers.reply import Reply
from handlers.verb import Access, Namespace
from mesh import events
from mesh.errors import NotFound
from mesh.injection import restart_workloads, set_injection, sidecar_report

VERB = "inject"
HELP = "label a namespace istio-injection=enabled; --restart rolls its workloads to get sidecars"
USAGE = "inject <namespace> [--restart]"


def rules(command: SidecarCommand) -> Access:
    return Access(role="operator", where=Namespace(command.namespace))


@dataclass(frozen=True)
class SidecarCommand:
    namespace: str
    enabled: bool
    restart: bool


def parse_namespace_command(args: list[str], *, enabled: bool, usage: str) -> SidecarCommand:
    try:
        flags, rest = parse.flags(args, {"--restart"})
        if len(rest) != 1:
            raise parse.ParseError("name exactly one namespace")
        namespace = parse.name(rest[0], what="namespace")
    except parse.ParseError as exc:
        raise UsageError(str(exc), usage) from None
    return SidecarCommand(namespace, enabled, "--restart" in flags)


def parse_args(args: list[str]) -> SidecarCommand:
    return parse_namespace_command(args, enabled=True, usage=USAGE)


def handle(command: SidecarCommand, ctx: Context) -> Reply:
    namespace = command.namespace
    target = Target(cluster=ctx.cluster, namespace=namespace)
    try:
        change = set_injection(ctx.kube, namespace, command.enabled)
    except NotFound as exc:
        raise Refused(str(exc)) from None
    state = "enabled" if command.enabled else "disabled"
    if change.changed:
        events.on_namespace(
            ctx.kube,
            namespace,
            "SidecarInjectionEnabled" if command.enabled else "SidecarInjectionDisabled",
            f"istio-injection label set to {state} by {ctx.actor.user_id}",
        )
    lines = [
        f"Sidecar injection {state} for {namespace}" + ("" if change.changed else " (it already was)") + "."
    ]
    if command.restart:
        restart = restart_workloads(ctx.kube, namespace)
        lines.append(
            f"Restarted {len(restart.restarted)} deployment(s): {', '.join(restart.restarted) or 'none'}."
        )
        if restart.skipped_paused:
            lines.append(f"⚠ paused, not restarted: {', '.join(restart.skipped_paused)}")
    report = sidecar_report(ctx.kube, namespace)
    for workload in report:
        pods = ", ".join(
            f"{p.name} {p.ready_text}" + ("" if p.has_sidecar else " (no sidecar)") for p in workload.pods
        )
        lines.append(f"• {workload.name}: {pods or 'no pods'}")
    missing = [p for w in report for p in w.without_sidecar] if command.enabled else []
    if missing:
        hint = "" if command.restart else " — restart them (`inject <namespace> --restart`) to add one"
        lines.append(f"⚠ {len(missing)} pod(s) still without a sidecar{hint}.")
    return Reply("\n".join(lines), target=target)
