"""`schedules [all]`: the channel's scheduled fault commands (or every channel's), with their next run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from core.durations import human_duration
from core.store import Schedule, list_schedules, next_run, run_handled
from handlers.context import Context
from handlers.errors import UsageError
from handlers.reply import Reply
from handlers.schedule import describe_when, local_time
from handlers.verb import READS, Access

VERB = "schedules"
HELP = "list scheduled fault commands and when they run next"
USAGE = "schedules [all]"
# More skipped runs in a row than this is absurd; stop looking and show the next one anyway.
_MAX_SKIPPED = 50


def rules(command: SchedulesCommand) -> Access:
    return READS


@dataclass(frozen=True)
class SchedulesCommand:
    everywhere: bool


def parse_args(args: list[str]) -> SchedulesCommand:
    if args not in ([], ["all"]):
        raise UsageError(f"unexpected {' '.join(args)!r}", USAGE)
    return SchedulesCommand(everywhere=bool(args))


def upcoming(session: Session, schedule: Schedule, now: datetime) -> datetime | None:
    """The next run not already skipped (a skipped or postponed run is recorded as dealt with)."""
    moment = now
    for _ in range(_MAX_SKIPPED):
        fire = next_run(schedule, moment)
        if fire is None or run_handled(session, schedule.id, fire) is None:
            return fire
        moment = fire
    return next_run(schedule, moment)


def _line(session: Session, s: Schedule, now: datetime, *, show_channel: bool) -> str:
    fire = upcoming(session, s, now) if s.enabled else None
    if s.enabled:
        state = f"next {local_time(fire, s.timezone)}" if fire else "no run left"
    elif s.run_at is not None and s.run_at <= now:
        state = "done"
    else:
        state = "paused"
    lead = s.reminder_lead_seconds
    remind = f", reminder {human_duration(timedelta(seconds=lead))} before" if lead else ""
    where = f" in {s.channel}" if show_channel else ""
    return (
        f"• {s.id} `{s.command}` — {describe_when(s)}; {state}{remind} "
        f"(by {s.created_by_name or s.created_by_user}{where})"
    )


def handle(command: SchedulesCommand, ctx: Context) -> Reply:
    channel = None if command.everywhere or not ctx.channel else ctx.channel
    now = ctx.now()
    with ctx.store.read() as session:
        lines = [
            _line(session, s, now, show_channel=channel is None)
            for s in list_schedules(session=session, channel=channel)
        ]
    if not lines:
        if channel is None:
            return Reply("No schedules.")
        return Reply("No schedules in this channel (`schedules all` lists every channel's).")
    return Reply(f"Schedules ({len(lines)}):\n" + "\n".join(lines))
