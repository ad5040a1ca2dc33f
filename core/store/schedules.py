"""The schedule repository: fault commands to run later, once or on a cron expression."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.cron import cron_trigger, firing_cron_trigger
from core.store.audit import query_events
from core.store.errors import InvalidValue, ScheduleNotFound
from core.store.filters import AuditQuery
from core.store.ids import new_short_id
from core.store.models import AuditEvent, Schedule
from core.values import Actor, Outcome

# Sentinel for update_schedule: "leave as is", distinct from None ("clear").
_KEEP: object = object()


def _check_timezone(timezone: str) -> None:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidValue(f"unknown time zone {timezone!r} (use an IANA name, e.g. Europe/Paris)") from None


def _check_trigger(run_at: datetime | None, cron: str | None, timezone: str) -> None:
    if (run_at is None) == (cron is None):
        raise InvalidValue("a schedule needs exactly one of a time (run_at) or a cron expression")
    if run_at is not None and run_at.tzinfo is None:
        raise InvalidValue("run_at must carry its time zone")
    if cron is not None:
        try:
            firing_cron_trigger(cron, timezone)
        except ValueError as error:
            raise InvalidValue(f"cannot read cron expression {cron!r}: {error}") from None


def _check_lead(reminder_lead: timedelta) -> None:
    if reminder_lead < timedelta(0):
        raise InvalidValue("the reminder lead time cannot be negative")


def create_schedule(
    *,
    session: Session,
    command: str,
    channel: str,
    created_by: Actor,
    run_at: datetime | None = None,
    cron: str | None = None,
    timezone: str = "UTC",
    reminder_lead: timedelta = timedelta(0),
    enabled: bool = True,
    now: datetime | None = None,
) -> Schedule:
    _check_timezone(timezone)
    _check_trigger(run_at, cron, timezone)
    _check_lead(reminder_lead)
    schedule = Schedule(
        id=new_short_id(session, "sch", Schedule.id),
        command=command,
        run_at=run_at,
        cron=cron,
        timezone=timezone,
        channel=channel,
        created_by_team=created_by.team_id,
        created_by_user=created_by.user_id,
        created_by_name=created_by.display_name,
        created_at=(now or datetime.now(UTC)).astimezone(UTC),
        reminder_lead_seconds=int(reminder_lead.total_seconds()),
        enabled=enabled,
    )
    session.add(schedule)
    session.flush()
    return schedule


def get_schedule(*, session: Session, schedule_id: str) -> Schedule:
    schedule = session.get(Schedule, schedule_id)
    if schedule is None:
        raise ScheduleNotFound(schedule_id)
    return schedule


def list_schedules(
    *, session: Session, channel: str | None = None, enabled: bool | None = None
) -> list[Schedule]:
    statement = select(Schedule)
    if channel is not None:
        statement = statement.where(Schedule.channel == channel)
    if enabled is not None:
        statement = statement.where(Schedule.enabled == enabled)
    return list(session.scalars(statement.order_by(Schedule.created_at, Schedule.id)))


def update_schedule(
    *,
    session: Session,
    schedule_id: str,
    command: str | None = None,
    run_at: datetime | object | None = _KEEP,
    cron: str | object | None = _KEEP,
    timezone: str | None = None,
    reminder_lead: timedelta | None = None,
    enabled: bool | None = None,
) -> Schedule:
    """Change what is given; to switch trigger kind pass the new one and None for the other."""
    schedule = get_schedule(session=session, schedule_id=schedule_id)
    new_run_at = schedule.run_at if run_at is _KEEP else run_at
    new_cron = schedule.cron if cron is _KEEP else cron
    new_timezone = timezone or schedule.timezone
    if new_run_at is not None and not isinstance(new_run_at, datetime):
        raise InvalidValue("run_at must be a datetime")
    if new_cron is not None and not isinstance(new_cron, str):
        raise InvalidValue("cron must be a string")
    _check_timezone(new_timezone)
    _check_trigger(new_run_at, new_cron, new_timezone)
    if reminder_lead is not None:
        _check_lead(reminder_lead)
        schedule.reminder_lead_seconds = int(reminder_lead.total_seconds())
    if command is not None:
        schedule.command = command
    if enabled is not None:
        schedule.enabled = enabled
    schedule.run_at = new_run_at
    schedule.cron = new_cron
    schedule.timezone = new_timezone
    session.flush()
    return schedule


def delete_schedule(*, session: Session, schedule_id: str) -> None:
    result = session.execute(delete(Schedule).where(Schedule.id == schedule_id).returning(Schedule.id))
    if result.scalar_one_or_none() is None:
        raise ScheduleNotFound(schedule_id)


# ---------------------------------------------------------------------- when a schedule runs


def next_run(schedule: Schedule, after: datetime) -> datetime | None:
    """The schedule's first run strictly after ``after`` (aware UTC), or None when there is none."""
    if schedule.run_at is not None:
        return schedule.run_at if schedule.run_at > after else None
    assert schedule.cron is not None
    trigger = cron_trigger(schedule.cron, schedule.timezone)
    fire = trigger.get_next_fire_time(None, after + timedelta(microseconds=1))
    return fire.astimezone(UTC) if fire is not None else None


def runs_between(schedule: Schedule, after: datetime, until: datetime, limit: int = 1000) -> list[datetime]:
    """The schedule's runs in (after, until], oldest first, at most ``limit``."""
    runs: list[datetime] = []
    moment = after
    while len(runs) < limit:
        fire = next_run(schedule, moment)
        if fire is None or fire > until:
            break
        runs.append(fire)
        moment = fire
    return runs


def is_run(schedule: Schedule, moment: datetime) -> bool:
    """Whether the schedule (as it is now) runs at ``moment``."""
    return next_run(schedule, moment - timedelta(microseconds=1)) == moment


# ---------------------------------------------------------------------- run bookkeeping
#
# What happened to each run is recorded in the audit log (shared by every replica, append-only),
# one event per run with the command "<verb> <schedule id> <run time>": run, skipped (by a person,
# or postponed), or missed (the scheduler was down). These read it back.

RUN_VERB = "schedule run"
SKIP_VERB = "schedule skip"
MISSED_VERB = "schedule missed"
POSTPONE_VERB = "schedule postpone"
HANDLED_VERBS = (RUN_VERB, SKIP_VERB, MISSED_VERB)
# History older than this may have been pruned from the audit log; never look further back.
BOOKKEEPING_LOOKBACK = timedelta(days=7)


def run_stamp(moment: datetime) -> str:
    """A run time as the bookkeeping writes it: UTC, with microseconds only when it has any."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if utc.microsecond else "%Y-%m-%dT%H:%M:%SZ")


def parse_run_stamp(text: str) -> datetime:
    form = "%Y-%m-%dT%H:%M:%S.%fZ" if "." in text else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.strptime(text, form).replace(tzinfo=UTC)


def run_command(verb: str, schedule_id: str, run: datetime) -> str:
    return f"{verb} {schedule_id} {run_stamp(run)}"


def _bookkeeping(session: Session, verb: str, text: str, limit: int) -> list[AuditEvent]:
    query = AuditQuery(verb=verb, text=text, outcome=Outcome.OK.value, limit=limit)
    return query_events(session=session, query=query).events


def run_handled(session: Session, schedule_id: str, run: datetime) -> str | None:
    """The verb that already dealt with this run (run, skipped, missed), or None."""
    for verb in HANDLED_VERBS:
        if _bookkeeping(session, verb, run_command(verb, schedule_id, run), limit=1):
            return verb
    return None


def handled_until(session: Session, schedule: Schedule, now: datetime) -> datetime:
    """Up to when the schedule's runs have been dealt with: its latest run, skip or missed report
    recorded, its latest resume, or its creation — whichever is last (at most a lookback ago)."""
    mark = max(schedule.created_at, now - BOOKKEEPING_LOOKBACK)
    for verb in HANDLED_VERBS:
        for event in _bookkeeping(session, verb, f"{verb} {schedule.id} ", limit=5):
            try:
                mark = max(mark, parse_run_stamp(event.command.split()[3]))
            except (IndexError, ValueError):
                continue
    for event in _bookkeeping(session, "resume", schedule.id, limit=1):
        mark = max(mark, event.occurred_at)
    return mark
