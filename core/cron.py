"""Cron expressions as people write them (crontab(5)), read with APScheduler's CronTrigger.

APScheduler 3 numbers weekdays from Monday (0=mon … 6=sun) even in ``from_crontab``, while
crontab numbers them from Sunday (0 or 7=sun, 1=mon … 6=sat): read as is, `0 14 * * 2` — every
SRE's "Tuesday 14:00" — would fire on Wednesdays. Numeric weekdays are therefore spelled out as
names (which both read alike) before APScheduler sees them.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

# crontab's numbering: 0 and 7 are Sunday.
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NUMERIC_PART = re.compile(r"(?P<start>\*|[0-7])(?:-(?P<end>[0-7]))?(?:/(?P<step>[1-7]))?")


class CronError(ValueError):
    """Not a five-field crontab expression meshbot can schedule."""


def _weekdays(field: str) -> str:
    """A crontab day-of-week field with every numeric part spelled as day names."""
    spelled: list[str] = []
    for part in field.split(","):
        match = _NUMERIC_PART.fullmatch(part)
        if match is None:
            spelled.append(part)  # names (mon-fri), or something APScheduler will reject itself
            continue
        start, end, step = match["start"], match["end"], int(match["step"] or 1)
        if start == "*":
            first, last = 0, 6
        else:
            first = int(start)
            last = int(end) if end is not None else (6 if match["step"] else first)
        if last < first:
            raise CronError(f"day-of-week range {part} runs backwards")
        spelled.extend(_DAY_NAMES[day] for day in range(first, last + 1, step))
    return ",".join(dict.fromkeys(spelled))


def cron_trigger(expression: str, timezone: str) -> CronTrigger:
    """The trigger for a crontab expression in an IANA time zone; CronError when unreadable."""
    fields = expression.split()
    if len(fields) != 5:
        raise CronError(f"wrong number of fields; got {len(fields)}, expected 5")
    minute, hour, day, month, day_of_week = fields
    try:
        trigger = CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_weekdays(day_of_week),
            timezone=ZoneInfo(timezone),
        )
    except ValueError as exc:
        raise CronError(str(exc)) from None
    return trigger


def firing_cron_trigger(expression: str, timezone: str) -> CronTrigger:
    """cron_trigger for a new schedule: also CronError when the expression never fires.

    `0 0 31 2 *` reads fine but matches no date: accepted, it would sit in `schedules` as if armed
    and never run. APScheduler answers None after searching to its last year (~0.2 s), which is
    why only creation pays for the check, not every computation of a next run.
    """
    trigger = cron_trigger(expression, timezone)
    if trigger.get_next_fire_time(None, datetime.now(ZoneInfo(timezone))) is None:
        raise CronError("no date ever matches it (such as the 31st of a month that has 30 days or fewer)")
    return trigger
