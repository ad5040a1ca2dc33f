"""`uninject <namespace> [--restart]`: stop injecting sidecars into a namespace's new pods."""

from __future__ import annotations

from handlers.context import Context
from handlers.inject import SidecarCommand, parse_namespace_command
from handlers.inject import handle as handle_injection
from handlers.reply import Reply
from handlers.verb import Access, Namespace

VERB = "uninject"
HELP = "remove a namespace's istio-injection label; --restart rolls its workloads without sidecars"
USAGE = "uninject <namespace> [--restart]"


def rules(command: SidecarCommand) -> Access:
    return Access(role="operator", where=Namespace(command.namespace))


def parse_args(args: list[str]) -> SidecarCommand:
    return parse_namespace_command(args, enabled=False, usage=USAGE)


def handle(command: SidecarCommand, ctx: Context) -> Reply:
    return handle_injection(command, ctx)
