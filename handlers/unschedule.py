"""`unschedule <id>`: delete a scheduled fault command (its runs, reminders and all)."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import Refused
from core.store import ScheduleNotFound
from domain.schedules import cancel
from handlers import parse
from handlers.context import Context
from handlers.errors import UsageError
from handlers.reply import Reply
from handlers.schedule import OfSchedule, require_schedule, schedule_id
from handlers.verb import Access

VERB = "unschedule"
HELP = "delete a scheduled fault command"
USAGE = "unschedule <schedule-id>"


def rules(command: UnscheduleCommand) -> Access:
    return Access(role="operator", where=OfSchedule(command.schedule_id))


@dataclass(frozen=True)
class UnscheduleCommand:
    schedule_id: str


def parse_args(args: list[str]) -> UnscheduleCommand:
    try:
        if len(args) != 1:
            raise parse.ParseError("give one schedule id, e.g. sch-1a2b (`schedules` lists them)")
        return UnscheduleCommand(schedule_id(args[0]))
    except parse.ParseError as exc:
        raise UsageError(str(exc), USAGE) from None


def handle(command: UnscheduleCommand, ctx: Context) -> Reply:
    target = require_schedule(ctx, command.schedule_id).target
    try:
        text = cancel(command.schedule_id, store=ctx.store)
    except ScheduleNotFound:
        raise Refused(f"there is no schedule {command.schedule_id}") from None
    return Reply(text, target=target)
