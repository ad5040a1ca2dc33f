"""`unexpose <host>`: remove meshbot's Gateway and VirtualService for a host, nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from core.values import Target
from handlers import parse
from handlers.context import Context
from handlers.errors import UsageError
from handlers.reply import Reply
from handlers.verb import CHANNEL_NAMESPACE, Access
from mesh.expose import unexpose

VERB = "unexpose"
HELP = "remove the Gateway and VirtualService meshbot made for a host"
USAGE = "unexpose <host>"


def rules(command: UnexposeCommand) -> Access:
    # A host names no namespace (its routes are found cluster-wide): whoever answers for the
    # channel's namespace may take it down.
    return Access(role="operator", where=CHANNEL_NAMESPACE)


@dataclass(frozen=True)
class UnexposeCommand:
    host: str


def parse_args(args: list[str]) -> UnexposeCommand:
    try:
        if len(args) != 1:
            raise parse.ParseError("name exactly one host")
        return UnexposeCommand(parse.hostname(args[0]))
    except parse.ParseError as exc:
        raise UsageError(str(exc), USAGE) from None


def handle(command: UnexposeCommand, ctx: Context) -> Reply:
    result = unexpose(ctx.kube, command.host)
    lines = [
        f"Removed {', '.join(result.deleted)}."
        if result.deleted
        else f"meshbot had not exposed {command.host}."
    ]
    if result.left:
        lines.append(f"Left alone (not meshbot's): {', '.join(result.left)}.")
    return Reply("\n".join(lines), target=Target(cluster=ctx.cluster))
