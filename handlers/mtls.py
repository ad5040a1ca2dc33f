"""`mtls [namespace]` shows the effective PeerAuthentication mode; `mtls strict|permissive <ns>` sets it."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import Refused
from core.values import Target
from handlers import parse
from handlers.context import Context
from handlers.errors import UsageError
from handlers.reply import Reply
from handlers.verb import READS, Access, Namespace
from mesh.errors import NotFound
from mesh.mtls import effective_mtls, set_mtls

VERB = "mtls"
HELP = "show the effective mTLS mode, or set a namespace to STRICT or PERMISSIVE"
USAGE = "mtls [<namespace>] | mtls strict|permissive <namespace>"
MODES = ("strict", "permissive")


def rules(command: MtlsCommand) -> Access:
    if command.mode is None:
        return READS
    # Setting a mode can cut every caller without a sidecar off the namespace.
    return Access(role="admin", where=Namespace(command.namespace))


@dataclass(frozen=True)
class MtlsCommand:
    namespace: str | None
    mode: str | None  # None: show


def parse_args(args: list[str]) -> MtlsCommand:
    try:
        if args and args[0].lower() in MODES:
            if len(args) != 2:
                raise parse.ParseError(f"mtls {args[0]} needs exactly one namespace")
            return MtlsCommand(parse.name(args[1], what="namespace"), args[0].upper())
        if len(args) > 1:
            hint = parse.did_you_mean(args[0], MODES)
            raise parse.ParseError(
                f"{args[0]!r} is not an mTLS mode{hint}: set one with `mtls {'|'.join(MODES)} <namespace>`, "
                "or show one namespace with `mtls <namespace>`"
            )
        return MtlsCommand(parse.name(args[0], what="namespace") if args else None, None)
    except parse.ParseError as exc:
        raise UsageError(str(exc), USAGE) from None


def handle(command: MtlsCommand, ctx: Context) -> Reply:
    namespace = ctx.namespace(command.namespace)
    target = Target(cluster=ctx.cluster, namespace=namespace)
    try:
        if command.mode is not None:
            change = set_mtls(ctx.kube, namespace, command.mode)
            before = f" (was {change.previous})" if change.previous else ""
            done = "set to" if change.written else "already"
            return Reply(f"mTLS in {namespace} {done} {change.mode}{before}.", target=target)
        report = effective_mtls(ctx.kube, namespace)
    except NotFound as exc:
        raise Refused(str(exc)) from None
    lines = [
        f"mTLS in {namespace}: {report.namespace_wide.mode} ({report.namespace_wide.source})",
        f"mesh-wide: {report.mesh.mode} ({report.mesh.source})",
    ]
    for workload in report.workloads:
        ports = "".join(f", port {port}: {mode}" for port, mode in workload.ports)
        lines.append(f"• {workload.name}: {workload.mode} ({workload.source}{ports})")
    return Reply("\n".join(lines), target=target)
