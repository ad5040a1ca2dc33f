"""`resume <id>`: let a paused schedule run again. Runs that fell while it was paused stay skipped
(they are not reported as missed, nor run late)."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import Refused
from core.store import ScheduleNotFound, get_schedule, next_run, update_schedule
from domain.schedules import describe_when, local_time
from handlers import parse
from handlers.context import Context
from handlers.errors import UsageError
from handlers.reply import Reply
from handlers.schedule import OfSchedule, schedule_id, target_of
from handlers.verb import Access

VERB = "resume"
HELP = "resume a paused scheduled fault command"
USAGE = "resume <schedule-id>"


def rules(command: ResumeCommand) -> Access:
    return Access(role="operator", where=OfSchedule(command.schedule_id))


@dataclass(frozen=True)
class ResumeCommand:
    schedule_id: str


def parse_args(args: list[str]) -> ResumeCommand:
    try:
        if len(args) != 1:
            raise parse.ParseError("give one schedule id, e.g. sch-1a2b (`schedules` lists them)")
        return ResumeCommand(schedule_id(args[0]))
    except parse.ParseError as exc:
        raise UsageError(str(exc), USAGE) from None


def handle(command: ResumeCommand, ctx: Context) -> Reply:
    now = ctx.now()
    with ctx.store.write() as session:
        try:
            schedule = get_schedule(session=session, schedule_id=command.schedule_id)
        except ScheduleNotFound:
            raise Refused(f"there is no schedule {command.schedule_id}") from None
        if schedule.enabled:
            raise Refused(f"schedule {schedule.id} is not paused")
        upcoming = next_run(schedule, now)
        if upcoming is None:
            raise Refused(
                f"schedule {schedule.id} ran (or was due) {describe_when(schedule)}; nothing is left to "
                "resume — schedule it again"
            )
        update_schedule(session=session, schedule_id=schedule.id, enabled=True)
        text = (
            f"Resumed schedule {schedule.id} (`{schedule.command}`, {describe_when(schedule)}); "
            f"next run {local_time(upcoming, schedule.timezone)}."
        )
        return Reply(text, target=target_of(schedule, ctx.cluster))
