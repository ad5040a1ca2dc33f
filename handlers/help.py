"""`help [verb]`: what meshbot can do, and the exact form of each command."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.context import Context
from handlers.errors import UsageError
from handlers.reply import Reply

VERB = "help"
HELP = "this list; `help <verb>` for one command's form"
USAGE = "help [<verb>]"


@dataclass(frozen=True)
class HelpCommand:
    verb: str | None


def parse_args(args: list[str]) -> HelpCommand:
    from handlers import VERBS

    if len(args) > 1:
        raise UsageError("name at most one verb", USAGE)
    if args and args[0] not in VERBS:
        raise UsageError(f"unknown verb {args[0]!r}; verbs: {', '.join(VERBS)}", USAGE)
    return HelpCommand(args[0] if args else None)


def handle(command: HelpCommand, ctx: Context) -> Reply:
    from handlers import VERBS

    if command.verb is not None:
        module = VERBS[command.verb]
        return Reply(f"{module.VERB}: {module.HELP}\nUsage: /mesh {module.USAGE}", ephemeral=True)
    lines = [f"• `{m.USAGE}` — {m.HELP}" for m in VERBS.values()]
    return Reply("meshbot commands (`/mesh help <verb>` for one):\n" + "\n".join(lines), ephemeral=True)
