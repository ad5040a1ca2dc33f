"""`schedule "<fault command>" at <time>|every "<cron>" [tz=<zone>] [remind=<lead>]`: run a fault later.

Everything is checked now, when the person who typed it can fix it: the inner command (parsed by
the fault verb itself), the time (in the future), the cron expression (APScheduler's crontab
reader), the time zone (IANA, via zoneinfo), the reminder lead. The namespace is fixed now too —
a command relying on the channel's default gets an explicit ``-n`` — so re-binding the channel
later cannot move a scheduled fault elsewhere. Policy and roles are checked again at each run
(bot.lifecycle.schedules runs it through the pipeline as the schedule's owner).

The helpers at the end describe schedules for the other schedule verbs and the lifecycle.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.cron import CronError, firing_cron_trigger
from core.durations import human_duration
from core.errors import Refused
from core.store import Schedule, ScheduleNotFound, create_schedule, get_binding, get_schedule, next_run
from core.values import Target
from domain import experiments
from domain.schedules import describe_when, local_time
from handlers import fault, parse
from handlers.context import Context
from handlers.errors import UsageError
from handlers.reply import Reply
from handlers.verb import Access

VERB = "schedule"
HELP = "run a fault command later: once at a time, or on a cron expression"
USAGE = 'schedule "<fault command>" at <time>|every "<cron>" [tz=<zone>] [remind=<lead>]'
EXAMPLES = (
    'schedule "fault delay 3s web-svc for 15m" every "0 14 * * 2" tz=Europe/Berlin',
    'schedule "fault abort 500 50% web-svc for 10m" at 2026-12-01T14:00 remind=30m',
)
TIME_FORMS = "2026-12-01T14:00 (or with an offset, …+01:00), 2026-12-01 14:00, 14:00 (the next one), +2h"
DEFAULT_REMIND = timedelta(minutes=10)
# Bounds a person would never need, so every time derived from them (a run, its reminder) stays a
# date Python and the scheduler can hold: `remind=99999999d` once crashed the leader at the run.
MAX_REMIND = timedelta(days=7)
# Ten years: far enough for a date typed in full; `at +…` is a duration, capped lower (730d).
MAX_AHEAD = timedelta(days=3653)
# Used with fullmatch: `$` matches before a trailing newline; [0-9], as `\d` takes any script's digits.
_CLOCK = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?")
_ID = re.compile(r"sch-[0-9a-f]{4,28}")


def rules(command: ScheduleCommand) -> Access:
    # Judged as the fault it will inject: that fault's role, namespace and risk.
    return fault.rules(command.fault)


# When: an aware datetime (absolute), a naive one (wall time in the zone), a time of day (its next
# occurrence in the zone), or a timedelta (from now).
When = datetime | time | timedelta


@dataclass(frozen=True)
class ScheduleCommand:
    words: tuple[str, ...]  # the inner fault command, as parsed
    fault: fault.StartCommand
    at: When | None
    cron: str | None
    timezone: str
    remind: timedelta | None


def parse_args(args: list[str]) -> ScheduleCommand:
    try:
        return _parse(args)
    except parse.ParseError as exc:
        raise UsageError(str(exc), USAGE) from None


def _parse(args: list[str]) -> ScheduleCommand:
    if not args:
        raise parse.ParseError(f"say what to run and when, e.g. {EXAMPLES[0]}")
    inner, rest = args[0], args[1:]
    words, started = inner_command(inner)
    opts, rest = parse.options(rest, {"tz", "remind"})
    timezone = zone(opts.get("tz", "UTC"))
    remind = reminder_lead(opts["remind"]) if "remind" in opts else None
    if not rest or rest[0] not in ("at", "every"):
        raise parse.ParseError('after the quoted command say when: `at <time>` or `every "<cron>"`')
    if rest[0] == "every":
        if len(rest) != 2:
            raise parse.ParseError('give the cron expression in quotes, e.g. every "0 14 * * 2"')
        cron = rest[1].strip()
        try:
            firing_cron_trigger(cron, timezone)
        except CronError as exc:
            raise parse.ParseError(
                f'cannot read cron expression "{cron}": {exc} (five fields: minute hour day month weekday)'
            ) from None
        return ScheduleCommand(tuple(words), started, None, cron, timezone, remind)
    if len(rest) not in (2, 3):
        raise parse.ParseError(f"`at` needs one time, e.g. {TIME_FORMS}")
    return ScheduleCommand(tuple(words), started, when(" ".join(rest[1:])), None, timezone, remind)


def inner_command(text: str) -> tuple[list[str], fault.StartCommand]:
    """The quoted fault command, parsed by the fault verb; only injections can be scheduled."""
    words = parse.words(text)
    if words[:1] == ["/mesh"]:
        words = words[1:]
    if words[:1] != ["fault"] or len(words) < 2 or words[1] not in ("delay", "abort"):
        raise parse.ParseError(
            'schedule runs a fault injection: quote it whole, e.g. "fault delay 3s web-svc for 15m"'
        )
    try:
        command = fault.parse_args(words[1:])
    except UsageError as exc:
        raise parse.ParseError(f"the scheduled command: {exc.message} (form: {exc.usage})") from None
    assert isinstance(command, fault.StartCommand)
    return words, command


def reminder_lead(text: str) -> timedelta:
    """How long before each run to remind the channel; `0`, `0s` or `off` for no reminder."""
    if text in ("0", "0s", "off", "none"):
        return timedelta(0)
    return parse.duration(text, what="reminder lead", maximum=MAX_REMIND)


def zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise parse.ParseError(f"unknown time zone {name!r}: use an IANA name, e.g. Europe/Berlin") from None
    return name


def when(text: str) -> When:
    text = text.strip()
    if text.startswith("+"):
        return parse.duration(text[1:], what="time from now", maximum=MAX_AHEAD)
    clock = _CLOCK.fullmatch(text)
    if clock:
        hour, minute, second = (int(g) if g else 0 for g in clock.groups())
        if hour > 23 or minute > 59 or second > 59:
            raise parse.ParseError(f"{text!r} is not a time of day")
        return time(hour, minute, second)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise parse.ParseError(f"cannot read the time {text!r}; use {TIME_FORMS}") from None


def resolve(moment: When, timezone: str, now: datetime) -> datetime:
    """The aware UTC time a parsed `at` means, seen from ``now``."""
    tz = ZoneInfo(timezone)
    if isinstance(moment, timedelta):
        return now + moment
    if isinstance(moment, datetime):
        local = moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)
        return local.astimezone(UTC)
    today = now.astimezone(tz)
    candidate = datetime.combine(today.date(), moment, tzinfo=tz)
    if candidate <= today:
        candidate = datetime.combine(today.date() + timedelta(days=1), moment, tzinfo=tz)
    return candidate.astimezone(UTC)


def handle(command: ScheduleCommand, ctx: Context) -> Reply:
    if not ctx.channel:
        raise Refused("a schedule reports to a channel: create it from one (the CLI: --channel <name>)")
    ref = command.fault.service
    namespace = ctx.namespace(ref.namespace)
    target = Target(cluster=ctx.cluster, namespace=namespace, service=ref.service)
    if ctx.policy.is_protected(namespace):
        raise Refused(f"namespace {namespace} is protected by policy: faults are not allowed there")
    # Every cap the fault will meet when it runs, checked now by the same code its start uses, so
    # a schedule that can only be refused is not made: protected namespace, duration, then
    # percentage, delay, status and headers.
    experiments.check_limits(target, command.fault.duration, ctx.policy)
    fault.fault_spec(command.fault, ctx, target)
    words = list(command.words)
    if ref.namespace is None:
        words += ["-n", namespace]
    now = ctx.now()
    run_at = None
    if command.at is not None:
        try:
            run_at = resolve(command.at, command.timezone, now)
        except OverflowError:
            # Year 1 or 9999 in a zone: moved to UTC it leaves the calendar Python holds.
            raise Refused(f"{command.at} is not a time meshbot can schedule", target=target) from None
    if run_at is not None and run_at - now > MAX_AHEAD:
        raise Refused(f"a schedule runs at most {MAX_AHEAD.days} days ahead", target=target)
    if run_at is not None and run_at.microsecond:
        # Whole seconds, as people read and type times (`+2m` from 14:03:07.4 is 14:05:08).
        run_at = run_at.replace(microsecond=0) + timedelta(seconds=1)
    if run_at is not None and run_at <= now:
        raise Refused(f"{local_time(run_at, command.timezone)} has already passed", target=target)
    remind = command.remind if command.remind is not None else DEFAULT_REMIND
    with ctx.store.write() as session:
        schedule = create_schedule(
            session=session,
            command=shlex.join(words),
            channel=ctx.channel,
            created_by=ctx.actor,
            run_at=run_at,
            cron=command.cron,
            timezone=command.timezone,
            reminder_lead=remind,
            now=now,
        )
    first = next_run(schedule, now)
    lines = [
        f"Scheduled {schedule.id}: `{schedule.command}` {describe_when(schedule)}.",
        f"Next run: {local_time(first, schedule.timezone) if first else 'none'}; "
        + (f"a reminder comes {human_duration(remind)} before each run." if remind else "no reminder."),
        f"`pause {schedule.id}` / `resume {schedule.id}` / `unschedule {schedule.id}`; "
        "`schedules` lists them.",
    ]
    data = {
        "schedule_id": schedule.id,
        "command": schedule.command,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "next_run": first.isoformat() if first else None,
    }
    return Reply("\n".join(lines), target=target, data=data)


# ---------------------------------------------------------------------- shared by the schedule verbs


def schedule_id(word: str) -> str:
    if not _ID.fullmatch(word):
        raise parse.ParseError(f"{word!r} is not a schedule id like sch-1a2b")
    return word


def target_of(schedule: Schedule, cluster: str | None = None) -> Target:
    """The service a scheduled command acts on (for replies and the audit log)."""
    try:
        _, command = inner_command(schedule.command)
    except parse.ParseError:
        return Target(cluster=cluster)
    return Target(cluster=cluster, namespace=command.service.namespace, service=command.service.service)


def require_schedule(ctx: Context, wanted: str) -> Reply:
    """An empty Reply carrying the schedule's target, or Refused when there is no such schedule."""
    with ctx.store.read() as session:
        try:
            return Reply("", target=target_of(get_schedule(session=session, schedule_id=wanted), ctx.cluster))
        except ScheduleNotFound:
            raise Refused(f"there is no schedule {wanted}") from None


@dataclass(frozen=True)
class OfSchedule:
    """Where a schedule verb acts (handlers.verb.Where): the namespace its fault runs in, named in
    its command (as every schedule made now is), else its channel's default; None for an unknown id
    (the handler then refuses)."""

    schedule_id: str

    def namespace(self, ctx: Context) -> str | None:
        with ctx.store.read() as session:
            try:
                schedule = get_schedule(session=session, schedule_id=self.schedule_id)
            except ScheduleNotFound:
                return None
            named = target_of(schedule).namespace
            if named:
                return named
            binding = get_binding(session=session, channel=schedule.channel) if schedule.channel else None
            return binding.namespace if binding is not None else ctx.policy.default_namespace
