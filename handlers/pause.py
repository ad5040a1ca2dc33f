"""`pause <id>`: stop a schedule from running (and reminding) until `resume`."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import Refused
from core.store import ScheduleNotFound, get_schedule, update_schedule
from domain.schedules import describe_when
from handlers import parse
from handlers.context import Context
from handlers.errors import UsageError
from handlers.reply import Reply
from handlers.schedule import OfSchedule, schedule_id, target_of
from handlers.verb import Access

VERB = "pause"
HELP = "pause a scheduled fault command"
USAGE = "pause <schedule-id>"


def rules(command: PauseCommand) -> Access:
    return Access(role="operator", where=OfSchedule(command.schedule_id))


@dataclass(frozen=True)
class PauseCommand:
    schedule_id: str


def parse_args(args: list[str]) -> PauseCommand:
    try:
        if len(args) != 1:
            raise parse.ParseError("give one schedule id, e.g. sch-1a2b (`schedules` lists them)")
        return PauseCommand(schedule_id(args[0]))
    except parse.ParseError as exc:
        raise UsageError(str(exc), USAGE) from None


def handle(command: PauseCommand, ctx: Context) -> Reply:
    with ctx.store.write() as session:
        try:
            schedule = get_schedule(session=session, schedule_id=command.schedule_id)
        except ScheduleNotFound:
            raise Refused(f"there is no schedule {command.schedule_id}") from None
        if not schedule.enabled:
            raise Refused(f"schedule {schedule.id} is already paused")
        update_schedule(session=session, schedule_id=schedule.id, enabled=False)
        text = (
            f"Paused schedule {schedule.id} (`{schedule.command}`, {describe_when(schedule)}); "
            f"`resume {schedule.id}` to run it again."
        )
        return Reply(text, target=target_of(schedule, ctx.cluster))
