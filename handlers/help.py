"""`help [verb]`: what meshbot can do, and the exact form of each command."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.context import Context
from handlers.errors import UsageError
from handlers.registry import VERBS
from handlers.reply import Reply
from handlers.verb import READS, Access

VERB = "help"
HELP = "this list; `help <verb>` for one command's form"
USAGE = "help [<verb>]"


def rules(command: HelpCommand) -> Access:
    return READS


@dataclass(frozen=True)
class HelpCommand:
    verb: str | None


def parse_args(args: list[str]) -> HelpCommand:
    if len(args) > 1:
        raise UsageError("name at most one verb", USAGE)
    if args and args[0] not in VERBS:
        raise UsageError(f"unknown verb {args[0]!r}; verbs: {', '.join(VERBS)}", USAGE)
    return HelpCommand(args[0] if args else None)


def handle(command: HelpCommand, ctx: Context) -> Reply:
    if command.verb is not None:
        record = VERBS[command.verb]
        return Reply(f"{record.VERB}: {record.HELP}\nUsage: /mesh {record.USAGE}", ephemeral=True)
    lines = [f"• `{r.USAGE}` — {r.HELP}" for r in VERBS.values()]
    return Reply("meshbot commands (`/mesh help <verb>` for one):\n" + "\n".join(lines), ephemeral=True)
