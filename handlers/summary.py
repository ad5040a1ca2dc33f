"""`summary [<service>] [-n <ns>] [window=15m]`: golden signals of one service or every service of a
namespace — rate, success, p50/p90/p99, fault-flagged share, top errors, per caller — worst first."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import Refused
from core.values import Target
from handlers import parse
from handlers.context import Context
from handlers.errors import UsageError
from handlers.images import Bar, success_chart
from handlers.reply import Attachment, Reply
from handlers.telemetry_text import service_data, signals_row, table, window
from handlers.verb import READS, Access
from mesh.prometheus import TelemetryUnavailable

VERB = "summary"
HELP = "golden signals from Prometheus: rate, success, latency, faults, per caller"
USAGE = "summary [<service>] [-n <namespace>] [window=15m]"
HEADER = ["service / ← caller", "rps", "success", "p50", "p90", "p99", "fault", "top errors"]


def rules(command: SummaryCommand) -> Access:
    return READS


@dataclass(frozen=True)
class SummaryCommand:
    service: str | None
    namespace: str | None
    window: str = "15m"


def parse_args(args: list[str]) -> SummaryCommand:
    try:
        found, rest = parse.options(args, {"window"})
        flag, rest = parse.service_ref(rest)
        if len(rest) > 1:
            raise parse.ParseError("summary shows one service or all of a namespace")
        ref = parse.service_word(rest[0], flag) if rest else None
        return SummaryCommand(
            ref.service if ref else None,
            ref.namespace if ref else (flag.namespace if flag else None),
            window(found.get("window", "15m")),
        )
    except parse.ParseError as exc:
        raise UsageError(str(exc), USAGE) from None


def handle(command: SummaryCommand, ctx: Context) -> Reply:
    namespace = ctx.namespace(command.namespace)
    target = Target(cluster=ctx.cluster, namespace=namespace, service=command.service)
    if ctx.prometheus is None:
        raise Refused("no Prometheus is configured: set MESHBOT_PROMETHEUS_URL", target=target)
    try:
        services = ctx.prometheus.services(namespace, command.window, command.service)
    except TelemetryUnavailable as exc:
        return Reply.error(f"No summary: {exc}.", target=target)
    what = command.service or f"services of {namespace}"
    data = {"window": command.window, "namespace": namespace, "services": [service_data(s) for s in services]}
    if not services:
        return Reply(
            f"Prometheus has no Istio requests for {what} in the last {command.window} "
            "(no traffic, or no sidecars reporting).",
            target=target,
            data=data,
        )
    rows = []
    for entry in services:
        rows.append(signals_row(entry.service, entry.signals))
        rows.extend(signals_row(f"  ← {c.workload}", c.signals) for c in entry.callers)
    text = f"*Golden signals* of {what} over {command.window}, worst first\n```\n{table(HEADER, rows)}\n```"
    bars = [Bar(s.service, s.signals.success_rate or 0.0) for s in services]
    if command.service:
        bars = [Bar(f"← {c.workload}", c.signals.success_rate or 0.0) for c in services[0].callers]
    chart = Attachment(
        name=f"summary-{command.service or namespace}.png",
        content=success_chart(bars, f"Success of {what} ({command.window})"),
        title=f"Success of {what} over {command.window}",
    )
    return Reply(text, target=target, data=data, attachments=(chart,))
