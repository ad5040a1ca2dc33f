"""`unexpose <host>`: remove meshbot's Gateway and VirtualService for a host, nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import Refused
from core.values import Target
from handlers import parse
from handlers.context import Context
from handlers.errors import UsageError
from handlers.reply import Reply
from handlers.verb import Access, Namespace
from mesh.errors import NotFound
from mesh.expose import unexpose

VERB = "unexpose"
HELP = "remove the Gateway and VirtualService meshbot made for a host"
USAGE = "unexpose <host> [-n <namespace>]"


def rules(command: UnexposeCommand) -> Access:
    # Only the exposure in the named namespace (else the channel's) is touched, so the role
    # needed is the one for that namespace.
    return Access(role="operator", where=Namespace(command.namespace))


@dataclass(frozen=True)
class UnexposeCommand:
    host: str
    namespace: str | None = None


def parse_args(args: list[str]) -> UnexposeCommand:
    try:
        namespace_flag, rest = parse.service_ref(args)
        if len(rest) != 1:
            raise parse.ParseError("name exactly one host")
        namespace = namespace_flag.namespace if namespace_flag else None
        return UnexposeCommand(parse.hostname(rest[0]), namespace)
    except parse.ParseError as exc:
        raise UsageError(str(exc), USAGE) from None


def handle(command: UnexposeCommand, ctx: Context) -> Reply:
    namespace = ctx.namespace(command.namespace)
    target = Target(cluster=ctx.cluster, namespace=namespace)
    try:
        result = unexpose(ctx.kube, command.host, namespace=namespace)
    except NotFound as exc:
        raise Refused(str(exc), target=target) from None
    lines = [
        f"Removed {', '.join(result.deleted)}."
        if result.deleted
        else f"meshbot had not exposed {command.host}."
    ]
    if result.left:
        lines.append(f"Left alone (not meshbot's): {', '.join(result.left)}.")
    return Reply("\n".join(lines), target=target)
