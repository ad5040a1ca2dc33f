"""`postpone <schedule-id>[@<run>] [by=<duration>]`: move one run later (1 h unless said);
the reminder's **Postpone 1 h** button sends this."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.schedules import postpone
from handlers import parse
from handlers.context import Context
from handlers.errors import UsageError
from handlers.reply import Reply
from handlers.schedule import OfSchedule, require_schedule
from handlers.skip import parse_run_reference
from handlers.verb import Access

VERB = "postpone"
HELP = "move the next run of a schedule (or the run named after @) later, by 1 h unless by= says"
USAGE = "postpone <schedule-id>[@<run time>] [by=<duration>]"
DEFAULT_BY = timedelta(hours=1)


def rules(command: PostponeCommand) -> Access:
    return Access(role="operator", where=OfSchedule(command.schedule_id))


@dataclass(frozen=True)
class PostponeCommand:
    schedule_id: str
    run: datetime | None
    by: timedelta


def parse_args(args: list[str]) -> PostponeCommand:
    try:
        opts, rest = parse.options(args, {"by"})
        by = parse.duration(opts["by"], what="postponement") if "by" in opts else DEFAULT_BY
    except parse.ParseError as exc:
        raise UsageError(str(exc), USAGE) from None
    if len(rest) != 1:
        raise UsageError("give one schedule id, e.g. sch-1a2b (`schedules` lists them)", USAGE)
    schedule, run = parse_run_reference(rest[0], USAGE)
    return PostponeCommand(schedule, run, by)


def handle(command: PostponeCommand, ctx: Context) -> Reply:
    target = require_schedule(ctx, command.schedule_id).target
    text = postpone(
        command.schedule_id,
        command.by,
        store=ctx.store,
        actor=ctx.actor,
        target=target,
        run=command.run,
        source=ctx.source,
        now=ctx.now(),
    )
    return Reply(text, target=target)
