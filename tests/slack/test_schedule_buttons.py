"""A schedule reminder's buttons — Postpone 1 h, Skip this run, Cancel schedule — run as the
person who presses them, through the same pipeline (roles, audit) as typing the command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.lifecycle.notify import CANCEL_ACTION, POSTPONE_ACTION, SKIP_ACTION
from bot.lifecycle.schedules import button_value
from core.store import Schedule, Store, list_schedules

from .conftest import SlackApp, SlackClient, audit_rows

AT = "2031-03-04T09:00"
RUN = datetime(2031, 3, 4, 9, 0, tzinfo=UTC)


def schedule_one(slack: SlackClient, store: Store) -> Schedule:
    slack.command(f'schedule "fault delay 3s web-svc.emojivoto-istio for 15m" at {AT}')
    slack.fake.wait_for_call("chat.postMessage", "sch-")
    with store.read() as session:
        (schedule,) = list_schedules(session=session)
        session.expunge(schedule)
    return schedule


def current(store: Store) -> list[Schedule]:
    with store.read() as session:
        found = list_schedules(session=session)
        for s in found:
            session.expunge(s)
    return found


def test_postpone_moves_the_run_an_hour_as_the_presser(slack: SlackClient, slack_app: SlackApp) -> None:
    schedule = schedule_one(slack, slack_app.store)
    slack.press(POSTPONE_ACTION, button_value(schedule.id, RUN), user="U0DEV1")
    slack.fake.wait_for_call("chat.postEphemeral", "Postponed")
    (moved,) = current(slack_app.store)
    assert moved.run_at is not None and moved.run_at.replace(tzinfo=UTC) == RUN + timedelta(hours=1)
    row = next(r for r in audit_rows(slack_app.store) if r.verb == "postpone" and r.source == "slack")
    assert (row.actor_user_id, row.outcome) == ("U0DEV1", "ok")


def test_skip_and_cancel(slack: SlackClient, slack_app: SlackApp) -> None:
    schedule = schedule_one(slack, slack_app.store)
    slack.press(SKIP_ACTION, button_value(schedule.id, RUN))
    slack.fake.wait_for_call("chat.postEphemeral", "Skipped")
    assert [s.id for s in current(slack_app.store)] == [schedule.id]
    slack.press(CANCEL_ACTION, button_value(schedule.id, RUN))
    slack.fake.wait_for_call("chat.postEphemeral", f"Deleted schedule {schedule.id}")
    assert current(slack_app.store) == []


def test_a_viewer_cannot_cancel_someone_elses_schedule(slack: SlackClient, slack_app: SlackApp) -> None:
    schedule = schedule_one(slack, slack_app.store)
    slack.press(CANCEL_ACTION, button_value(schedule.id, RUN), user="U0SOMEONE")
    slack.fake.wait_for_call("chat.postEphemeral", "operator")
    assert [s.id for s in current(slack_app.store)] == [schedule.id]
    denied = [r for r in audit_rows(slack_app.store) if r.verb == "unschedule"]
    assert [(r.actor_user_id, r.outcome) for r in denied] == [("U0SOMEONE", "denied")]
