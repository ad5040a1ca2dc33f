"""`skip <schedule-id>[@<run>]`: skip one run of a schedule (the next unless a run is named);
later runs of a cron schedule stay. The reminder's **Skip this run** button sends this."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.store.schedules import parse_run_stamp
from domain.schedules import skip_next
from handlers import parse
from handlers.context import Context
from handlers.errors import UsageError
from handlers.reply import Reply
from handlers.schedule import OfSchedule, require_schedule, schedule_id
from handlers.verb import Access

VERB = "skip"
HELP = "skip the next run of a schedule (or the run named after @)"
USAGE = "skip <schedule-id>[@<run time>]"


def rules(command: SkipCommand) -> Access:
    return Access(role="operator", where=OfSchedule(command.schedule_id))


@dataclass(frozen=True)
class SkipCommand:
    schedule_id: str
    run: datetime | None


def parse_run_reference(word: str, usage: str) -> tuple[str, datetime | None]:
    """`sch-1a2b` or `sch-1a2b@2026-12-01T13:00:00Z`, as the reminder buttons carry them."""
    name, at, stamp = word.partition("@")
    try:
        run = parse_run_stamp(stamp) if at else None
    except ValueError:
        raise UsageError(f"{stamp!r} is not a run time like 2026-12-01T13:00:00Z", usage) from None
    try:
        return schedule_id(name), run
    except parse.ParseError as exc:
        raise UsageError(str(exc), usage) from None


def parse_args(args: list[str]) -> SkipCommand:
    if len(args) != 1:
        raise UsageError("give one schedule id, e.g. sch-1a2b (`schedules` lists them)", USAGE)
    return SkipCommand(*parse_run_reference(args[0], USAGE))


def handle(command: SkipCommand, ctx: Context) -> Reply:
    target = require_schedule(ctx, command.schedule_id).target
    text = skip_next(
        command.schedule_id,
        store=ctx.store,
        actor=ctx.actor,
        target=target,
        run=command.run,
        source=ctx.source,
        now=ctx.now(),
    )
    return Reply(text, target=target)
