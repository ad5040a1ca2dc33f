"""What a schedule is beyond its row: when it runs, and moving, skipping or cancelling one run.

These are the acts a person (a verb, or a reminder's button through the pipeline) performs on a
schedule; each writes the store and its own audit row in one transaction, so the leader, which
re-reads both before every run, sees them on whichever replica they were made.

``target`` is what the schedule acts on, as the verb that parsed its command found it; this floor
does not parse commands.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from core.clock import utcnow
from core.durations import human_duration
from core.store import (
    Schedule,
    ScheduleNotFound,
    Store,
    create_schedule,
    delete_schedule,
    get_schedule,
    is_run,
    next_run,
    record_event,
    run_handled,
    update_schedule,
)
from core.store.schedules import POSTPONE_VERB, SKIP_VERB, run_command, run_stamp
from core.values import Actor, Outcome, Source, Target

SCHEDULER = Actor.scheduler()
POSTPONE_BY = timedelta(hours=1)


def local_time(moment: datetime, timezone: str) -> str:
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S %Z").replace(":00 ", " ")


def describe_when(schedule: Schedule) -> str:
    if schedule.run_at is not None:
        return f"once at {local_time(schedule.run_at, schedule.timezone)}"
    return f'every "{schedule.cron}" ({schedule.timezone})'


def owner_of(schedule: Schedule) -> Actor:
    return Actor(
        user_id=schedule.created_by_user,
        team_id=schedule.created_by_team,
        display_name=schedule.created_by_name,
    )


def record(
    session: Session,
    schedule: Schedule,
    *,
    target: Target,
    verb: str,
    command: str,
    message: str,
    actor: Actor = SCHEDULER,
    source: Source = Source.SCHEDULER,
    outcome: Outcome = Outcome.OK,
) -> None:
    record_event(
        session=session,
        actor=actor,
        source=source,
        command=command,
        verb=verb,
        outcome=outcome,
        message=message[:500],
        channel=schedule.channel,
        target=target,
    )


def _upcoming(session: Session, schedule: Schedule, run: datetime | None, now: datetime) -> datetime | str:
    """The run a button means: the one it was shown for, else the next one; or why there is none."""
    if not schedule.enabled:
        return f"schedule {schedule.id} is paused"
    if run is not None:
        if not is_run(schedule, run):
            return f"schedule {schedule.id} no longer runs at {local_time(run, schedule.timezone)}"
        if run <= now:
            return f"the run of {schedule.id} at {local_time(run, schedule.timezone)} has already started"
    else:
        moment = now
        while True:
            upcoming = next_run(schedule, moment)
            if upcoming is None:
                return f"schedule {schedule.id} has no run left"
            if run_handled(session, schedule.id, upcoming) is None:
                run = upcoming
                break
            moment = upcoming
    done = run_handled(session, schedule.id, run)
    if done is not None:
        when = local_time(run, schedule.timezone)
        return f"the run of {schedule.id} at {when} was already dealt with ({done})"
    return run


def _run_in_question(
    session: Session, schedule_id: str, run: datetime | None, now: datetime
) -> tuple[Schedule, datetime] | str:
    """The schedule and the run a button or verb means, or the sentence saying why there is none."""
    try:
        schedule = get_schedule(session=session, schedule_id=schedule_id)
    except ScheduleNotFound:
        return f"Schedule {schedule_id} no longer exists."
    upcoming = _upcoming(session, schedule, run, now)
    if isinstance(upcoming, str):
        return upcoming[:1].upper() + upcoming[1:] + "."
    return schedule, upcoming


def postpone(
    schedule_id: str,
    by: timedelta = POSTPONE_BY,
    *,
    store: Store,
    actor: Actor,
    target: Target,
    run: datetime | None = None,
    source: Source = Source.SLACK,
    now: datetime | None = None,
) -> str:
    """Move one run (``run``, default the next) later by ``by``; returns the text to show.

    A one-off schedule moves as a whole. For a cron schedule only that run moves: it is skipped,
    and a one-off schedule (its own id, listed by `schedules`) runs it ``by`` later.
    """
    now = now or utcnow()
    with store.write() as session:
        found = _run_in_question(session, schedule_id, run, now)
        if isinstance(found, str):
            return found
        schedule, upcoming = found
        later = upcoming + by
        tz = schedule.timezone
        if schedule.run_at is not None:
            update_schedule(session=session, schedule_id=schedule_id, run_at=later)
            text = f"Postponed {schedule_id} by {human_duration(by)}: it now runs at {local_time(later, tz)}."
        else:
            moved = create_schedule(
                session=session,
                command=schedule.command,
                channel=schedule.channel,
                created_by=owner_of(schedule),
                run_at=later,
                timezone=tz,
                reminder_lead=timedelta(seconds=schedule.reminder_lead_seconds),
                now=now,
            )
            record(
                session,
                schedule,
                target=target,
                verb=SKIP_VERB,
                command=run_command(SKIP_VERB, schedule_id, upcoming),
                message=f"postponed to {run_stamp(later)} as {moved.id}",
                actor=actor,
                source=source,
            )
            text = (
                f"Postponed the {local_time(upcoming, tz)} run of {schedule_id} by {human_duration(by)} "
                f"(to {local_time(later, tz)}, as {moved.id}); later runs stay as scheduled."
            )
        record(
            session,
            schedule,
            target=target,
            verb=POSTPONE_VERB,
            command=f"{POSTPONE_VERB} {schedule_id} {run_stamp(upcoming)} to {run_stamp(later)}",
            message=text,
            actor=actor,
            source=source,
        )
    return text


def skip_next(
    schedule_id: str,
    *,
    store: Store,
    actor: Actor,
    target: Target,
    run: datetime | None = None,
    source: Source = Source.SLACK,
    now: datetime | None = None,
) -> str:
    """Skip one run (``run``, default the next); later runs of a cron schedule stay."""
    now = now or utcnow()
    with store.write() as session:
        found = _run_in_question(session, schedule_id, run, now)
        if isinstance(found, str):
            return found
        schedule, upcoming = found
        tz = schedule.timezone
        if schedule.run_at is not None:
            # Its only run: nothing is left to run, so it is paused (and listed as such).
            update_schedule(session=session, schedule_id=schedule_id, enabled=False)
            text = f"Skipped the {local_time(upcoming, tz)} run of {schedule_id}; it has no other run."
        else:
            following = next_run(schedule, upcoming)
            then = f" next run {local_time(following, tz)}" if following else " no run left"
            text = f"Skipped the {local_time(upcoming, tz)} run of {schedule_id};{then}."
        record(
            session,
            schedule,
            target=target,
            verb=SKIP_VERB,
            command=run_command(SKIP_VERB, schedule_id, upcoming),
            message=text,
            actor=actor,
            source=source,
        )
    return text


def cancel(schedule_id: str, *, store: Store) -> str:
    """Delete the schedule and say what it was (ScheduleNotFound when there is none). The verb's
    own audit row records it: unlike a skipped run, nothing later needs to find it there."""
    with store.write() as session:
        schedule = get_schedule(session=session, schedule_id=schedule_id)
        text = f"Deleted schedule {schedule.id}: `{schedule.command}`, {describe_when(schedule)}."
        delete_schedule(session=session, schedule_id=schedule_id)
    return text
