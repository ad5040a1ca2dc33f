"""`dashboard grafana|kiali|jaeger|prometheus|zipkin`: a link to the mesh's dashboards."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import Refused
from handlers.context import Context
from handlers.errors import UsageError
from handlers.reply import Reply
from handlers.verb import READS, Access

VERB = "dashboard"
HELP = "links to Grafana, Kiali, Jaeger, Prometheus or Zipkin"
DASHBOARDS = ("grafana", "kiali", "jaeger", "prometheus", "zipkin")
USAGE = f"dashboard [{'|'.join(DASHBOARDS)}]"


def rules(command: DashboardCommand) -> Access:
    return READS


@dataclass(frozen=True)
class DashboardCommand:
    name: str | None


def parse_args(args: list[str]) -> DashboardCommand:
    if len(args) > 1:
        raise UsageError("name at most one dashboard", USAGE)
    if args and args[0] not in DASHBOARDS:
        raise UsageError(f"unknown dashboard {args[0]!r}", USAGE)
    return DashboardCommand(args[0] if args else None)


def handle(command: DashboardCommand, ctx: Context) -> Reply:
    links = ctx.policy.dashboards
    if command.name is None:
        if not links:
            raise Refused("no dashboards are configured: add `dashboards:` to the policy file")
        lines = [f"• {name}: {url}" for name, url in sorted(links.items())]
        return Reply("Dashboards:\n" + "\n".join(lines))
    url = links.get(command.name)
    if not url:
        raise Refused(
            f"no link for {command.name} is configured: add `dashboards: {{{command.name}: <url>}}` "
            "to the policy file"
        )
    return Reply(f"{command.name.capitalize()}: {url}")
