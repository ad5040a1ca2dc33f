"""Scheduled fault commands: when they run, the reminder before each run, and its buttons.

A schedule is a row in the store (core.store.schedules): a fault command, once at ``run_at`` or on
a cron expression in a time zone, the channel it reports to, its owner and a reminder lead. The
leader arms one APScheduler date job for each schedule's next run and one for the reminder before
it, re-planned whenever the row changes; cron arithmetic is APScheduler's CronTrigger.

When a run comes, it goes through the same ``Pipeline.run`` as a typed command — as the schedule's
owner, source ``scheduler`` — so policy and roles are checked again at that moment. A run whose
pipeline wants a person to confirm it is not run: the channel is told.

Bookkeeping lives in the audit log, which every replica shares and nobody can rewrite: each run
is recorded (``schedule run <id> <time>``) before it starts, as are runs skipped, postponed and
missed. From it a new leader learns up to when each schedule was handled; runs between then and now
that are later than ``schedule_misfire_grace_seconds`` were missed (the service was down) and are
reported to the channel — never fired late without a word. A run found already recorded is never
started twice (at most once: a fault injected twice is worse than one missed and reported).

The reminder's buttons run `postpone`, `skip` and `unschedule` through the pipeline (the acts
themselves live in domain.schedules), on whichever replica Slack reaches; they only write the
store and the audit log, and the leader re-reads both before each run.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.lifecycle import jobs
from bot.lifecycle.notify import CANCEL_ACTION, POSTPONE_ACTION, SKIP_ACTION, Button, deliver
from bot.lifecycle.runtime import Runtime
from bot.pipeline import Unconfirmed
from core.durations import human_duration
from core.store import (
    Experiment,
    Outcome,
    Schedule,
    ScheduleNotFound,
    Source,
    get_experiment,
    get_schedule,
    handled_until,
    is_run,
    list_schedules,
    next_run,
    run_handled,
    runs_between,
    update_schedule,
)
from core.store.schedules import (
    MISSED_VERB,
    RUN_VERB,
    parse_run_stamp,
    run_command,
    run_stamp,
)
from domain.ending import DATABASE_ERRORS
from domain.schedules import local_time, owner_of, record
from handlers.schedule import target_of

log = logging.getLogger(__name__)

_GONE_OR_DOWN: tuple[type[Exception], ...] = (ScheduleNotFound, *DATABASE_ERRORS)

# At most this many missed runs are listed in one report.
_MAX_LISTED = 5


# ---------------------------------------------------------------------- the reminder's buttons


def button_value(schedule_id: str, run: datetime) -> str:
    return f"{schedule_id}@{run_stamp(run)}"


def reminder_buttons(schedule_id: str, run: datetime) -> tuple[Button, ...]:
    value = button_value(schedule_id, run)
    return (
        Button("Postpone 1 h", POSTPONE_ACTION, value),
        Button("Skip this run", SKIP_ACTION, value),
        Button("Cancel schedule", CANCEL_ACTION, value, style="danger"),
    )


# ---------------------------------------------------------------------- the leader's side


@dataclass
class _Known:
    signature: tuple[object, ...]
    enabled: bool
    mark: datetime | None = None  # runs up to here are dealt with
    armed: datetime | None = None  # the run the jobs are armed for
    reminded: datetime | None = None  # the run a reminder went out for


def _signature(schedule: Schedule) -> tuple[object, ...]:
    return (
        schedule.command,
        schedule.run_at,
        schedule.cron,
        schedule.timezone,
        schedule.reminder_lead_seconds,
        schedule.enabled,
        schedule.channel,
    )


class ScheduleRunner:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._lock = threading.RLock()
        self._known: dict[str, _Known] = {}

    def reset(self) -> None:
        with self._lock:
            self._known.clear()

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=self.rt.settings.schedule_misfire_grace_seconds)

    def sync(self) -> None:
        """Plan every schedule that is new to this leader or changed (raises on database errors)."""
        with self.rt.store.read() as session:
            schedules = list_schedules(session=session)
            now = self.rt.now()
            changed: list[Schedule] = []
            seen = set()
            for schedule in schedules:
                seen.add(schedule.id)
                signature = _signature(schedule)
                with self._lock:
                    known = self._known.get(schedule.id)
                    if known is not None and known.signature == signature:
                        continue
                    if not schedule.enabled:
                        self._known[schedule.id] = _Known(signature, enabled=False)
                        self._disarm(schedule.id)
                        continue
                    if known is None:
                        mark = handled_until(session, schedule, now)
                    elif not known.enabled:
                        mark = now  # resumed: runs while it was paused are not missed runs
                    else:
                        mark = known.mark or handled_until(session, schedule, now)
                    self._known[schedule.id] = _Known(signature, enabled=True, mark=mark)
                changed.append(schedule)
        with self._lock:
            for schedule_id in [i for i in self._known if i not in seen]:
                del self._known[schedule_id]
                self._disarm(schedule_id)
        for schedule in changed:
            try:
                self._plan(schedule, now)
            except Exception:
                # One schedule that cannot be planned (a value no check foresaw) must not stop
                # the others, nor the expiry sync and reaper armed after this: say which, go on.
                log.exception("cannot plan schedule %s (%r); it will not run", schedule.id, schedule.command)
                self._disarm(schedule.id)

    def _disarm(self, schedule_id: str) -> None:
        self.rt.remove_job(f"schedule:{schedule_id}")
        self.rt.remove_job(f"schedule-remind:{schedule_id}")

    def _plan(self, schedule: Schedule, now: datetime) -> None:
        """Report runs missed since the watermark, then arm the next run and its reminder."""
        with self._lock:
            known = self._known.get(schedule.id)
            if known is None or not known.enabled or known.mark is None:
                return
            mark = known.mark
        due = runs_between(schedule, mark, now)
        missed = [run for run in due if now - run > self.grace]
        if missed:
            self._report_missed(schedule, missed)
            with self._lock:
                known.mark = missed[-1]
                mark = missed[-1]
            if schedule.run_at is not None:
                return  # its one run is gone; _report_missed paused it
        upcoming = next_run(schedule, mark)
        if upcoming is None:
            self._disarm(schedule.id)
            return
        with self._lock:
            known.armed = upcoming
        self.rt.add_job(
            jobs.run_schedule, f"schedule:{schedule.id}", upcoming, schedule.id, run_stamp(upcoming)
        )
        lead = timedelta(seconds=schedule.reminder_lead_seconds)
        if lead and upcoming - lead > mark and known.reminded != upcoming and upcoming > now:
            self.rt.add_job(
                jobs.remind_schedule,
                f"schedule-remind:{schedule.id}",
                max(upcoming - lead, now),
                schedule.id,
                run_stamp(upcoming),
            )
        else:
            self.rt.remove_job(f"schedule-remind:{schedule.id}")

    def _report_missed(self, schedule: Schedule, missed: list[datetime]) -> None:
        tz = schedule.timezone
        listed = ", ".join(local_time(run, tz) for run in missed[-_MAX_LISTED:])
        more = f" and {len(missed) - _MAX_LISTED} earlier" if len(missed) > _MAX_LISTED else ""
        runs = "run" if len(missed) == 1 else f"{len(missed)} runs"
        text = (
            f"⚠ Missed {runs} of schedule {schedule.id} (`{schedule.command}`): {listed}{more} — meshbot's "
            "scheduler was not running then. They were not run late."
        )
        try:
            with self.rt.store.write() as session:
                record(
                    session,
                    schedule,
                    target=target_of(schedule),
                    verb=MISSED_VERB,
                    command=run_command(MISSED_VERB, schedule.id, missed[-1]),
                    message=text,
                    outcome=Outcome.OK,
                )
                if schedule.run_at is not None:
                    update_schedule(session=session, schedule_id=schedule.id, enabled=False)
        except _GONE_OR_DOWN:
            log.exception("could not record the missed runs of %s", schedule.id)
        log.warning("%s", text)
        notifier = self.rt.notifier
        deliver(schedule.id, lambda: notifier.channel_message(schedule.channel, text))

    # ------------------------------------------------------------------ jobs

    def remind(self, schedule_id: str, run_text: str) -> None:
        run = parse_run_stamp(run_text)
        try:
            with self.rt.store.read() as session:
                schedule = get_schedule(session=session, schedule_id=schedule_id)
                done = run_handled(session, schedule_id, run)
        except _GONE_OR_DOWN:
            return
        if not schedule.enabled or done is not None or not is_run(schedule, run) or run <= self.rt.now():
            return
        with self._lock:
            known = self._known.get(schedule_id)
            if known is not None:
                if known.reminded == run:
                    return
                known.reminded = run
        left = run - self.rt.now()
        text = (
            f"🗓 In {human_duration(timedelta(seconds=max(1, round(left.total_seconds()))))}, schedule "
            f"{schedule_id} runs `{schedule.command}` ({local_time(run, schedule.timezone)}, "
            f"for {schedule.created_by_name or schedule.created_by_user})."
        )
        notifier = self.rt.notifier
        buttons = reminder_buttons(schedule_id, run)
        deliver(schedule_id, lambda: notifier.channel_message(schedule.channel, text, buttons=buttons))

    def run(self, schedule_id: str, run_text: str) -> None:
        run = parse_run_stamp(run_text)
        now = self.rt.now()
        try:
            with self.rt.store.read() as session:
                schedule = get_schedule(session=session, schedule_id=schedule_id)
                done = run_handled(session, schedule_id, run)
        except ScheduleNotFound:
            with self._lock:
                self._known.pop(schedule_id, None)
            return
        except DATABASE_ERRORS as exc:
            self._could_not_run(schedule_id, run, f"the store is unavailable ({str(exc).splitlines()[0]})")
            return
        if not schedule.enabled or not is_run(schedule, run):
            self._replan(schedule, now)  # paused or changed since it was armed
            return
        if done is not None:
            log.info("run %s of %s was already dealt with (%s)", run_text, schedule_id, done)
            self._advance(schedule, run, now)
            return
        if now - run > self.grace:
            self._report_missed(schedule, [run])
            self._advance(schedule, run, now)
            return
        try:
            with self.rt.store.write() as session:
                # Recorded before it starts: a crash mid-run must not make a later leader run it again.
                record(
                    session,
                    schedule,
                    target=target_of(schedule),
                    verb=RUN_VERB,
                    command=run_command(RUN_VERB, schedule_id, run),
                    message=f"running `{schedule.command}` for {owner_of(schedule)}",
                )
                if schedule.run_at is not None:
                    update_schedule(session=session, schedule_id=schedule_id, enabled=False)
        except DATABASE_ERRORS as exc:
            self._could_not_run(
                schedule_id, run, f"the store is unavailable ({str(exc).splitlines()[0]})", schedule=schedule
            )
            return
        self._advance(schedule, run, now)
        owner = owner_of(schedule)
        # Roles and policy are checked again, as the owner, now. The confirm step is not asked
        # again: a risky fault was confirmed (or approved) when it was scheduled (bot.confirm).
        reply = self.rt.runs().run(
            schedule.command,
            actor=owner,
            source=Source.SCHEDULER,
            channel=schedule.channel,
            confirmed_by=owner,
        )
        when = local_time(run, schedule.timezone)
        if isinstance(reply, Unconfirmed):
            text = (
                f"✖ Schedule {schedule_id} did not run `{schedule.command}` ({when}): it needs a person to "
                f"confirm it ({reply.text}). Run it by hand if it should still happen."
            )
        elif reply.ok:
            text = f"▶ Schedule {schedule_id} ran `{schedule.command}` ({when}):\n{reply.text}"
            started = self._experiment(reply.experiment_id)
            if started is not None:
                # The experiment gets its own thread, as if started from the channel by its owner.
                notifier = self.rt.notifier
                deliver(schedule_id, lambda: notifier.experiment_started(started, text))
                return
        else:
            text = f"✖ Schedule {schedule_id} could not run `{schedule.command}` ({when}): {reply.text}"
        notifier = self.rt.notifier
        deliver(schedule_id, lambda: notifier.channel_message(schedule.channel, text))

    def _experiment(self, experiment_id: str | None) -> Experiment | None:
        if experiment_id is None:
            return None
        try:
            with self.rt.store.read() as session:
                experiment = get_experiment(session=session, experiment_id=experiment_id)
                session.expunge(experiment)
                return experiment
        except DATABASE_ERRORS:
            return None

    def _could_not_run(
        self, schedule_id: str, run: datetime, why: str, *, schedule: Schedule | None = None
    ) -> None:
        log.error("schedule %s could not run at %s: %s", schedule_id, run_stamp(run), why)
        if schedule is not None:
            when = local_time(run, schedule.timezone)
            text = f"✖ Schedule {schedule_id} could not run `{schedule.command}` at {when}: {why}."
            notifier = self.rt.notifier
            deliver(schedule_id, lambda: notifier.channel_message(schedule.channel, text))

    def _advance(self, schedule: Schedule, run: datetime, now: datetime) -> None:
        with self._lock:
            known = self._known.get(schedule.id)
            if known is not None:
                known.mark = max(known.mark or run, run)
        if schedule.run_at is None:
            self._plan(schedule, now)

    def _replan(self, schedule: Schedule, now: datetime) -> None:
        with self._lock:
            known = self._known.get(schedule.id)
            if known is not None:
                known.signature = ()  # re-read and re-planned at the next sync
        self._disarm(schedule.id)
