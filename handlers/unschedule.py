"""`unschedule <id>`: delete a scheduled fault command (its runs, reminders and all)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.store import ScheduleNotFound, delete_schedule, get_schedule
from handlers import parse
from handlers.context import Context
from handlers.errors import Refused, UsageError
from handlers.reply import Reply
from handlers.schedule import describe_when, schedule_id, target_of

VERB = "unschedule"
HELP = "delete a scheduled fault command"
USAGE = "unschedule <schedule-id>"


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
    with ctx.store.write() as session:
        try:
            schedule = get_schedule(session=session, schedule_id=command.schedule_id)
        except ScheduleNotFound:
            raise Refused(f"there is no schedule {command.schedule_id}") from None
        text = f"Deleted schedule {schedule.id}: `{schedule.command}`, {describe_when(schedule)}."
        target = target_of(schedule, ctx.cluster)
        delete_schedule(session=session, schedule_id=command.schedule_id)
    return Reply(text, target=target)
