"""A fault's thread: the parent with Stop/Extend, replies in it, its final state; Slack failing."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import pytest

from bot.slack import render
from bot.slack.threads import SlackNotifier

from .conftest import (
    CHANNEL,
    SlackApp,
    SlackClient,
    audit_rows,
    buttons,
    experiment,
    only_experiment_id,
    wait_audit,
)

FAULT = "fault delay 3s web-svc.emojivoto-istio for 5m"


def start_fault(slack: SlackClient, user: str = "U0OPS") -> tuple[str, str]:
    """Start a fault from Slack; its experiment id and its thread's ts."""
    slack.command(FAULT, user=user)
    parent = slack.fake.wait_for_call("chat.postMessage", "Stop now")[0]
    slack.fake.wait_for_call("chat.postMessage", "VirtualServices")
    return buttons(parent.blocks)[render.ACTION_STOP], parent.params["channel"]


def test_a_fault_starts_a_thread_whose_parent_says_what_runs_where_until_when(
    slack: SlackClient, slack_app: SlackApp
) -> None:
    slack.command(FAULT)
    parent = slack.fake.wait_for_call("chat.postMessage", "Stop now")[0]
    experiment_id = only_experiment_id(slack_app.store)
    assert buttons(parent.blocks) == {render.ACTION_STOP: experiment_id, render.ACTION_EXTEND: experiment_id}
    shown = parent.all_text()
    for expected in ("delay 3s on 100% of requests", "web-svc.emojivoto-istio", "*Until*", "<!date^", "ops"):
        assert expected in shown
    assert parent.params["channel"] == CHANNEL and "thread_ts" not in parent.params
    reply = slack.fake.wait_for_call("chat.postMessage", "VirtualServices")[0]
    stored = experiment(slack_app.store, experiment_id)
    # The fake numbers its messages: the parent was the first.
    assert stored.thread_ts == "1700000000.000001" == reply.params["thread_ts"]
    assert stored.channel == CHANNEL


def test_stop_now_clears_the_fault_as_the_presser_and_finishes_the_parent(
    slack: SlackClient, slack_app: SlackApp
) -> None:
    experiment_id, _ = start_fault(slack)
    thread_ts = experiment(slack_app.store, experiment_id).thread_ts
    slack.press(render.ACTION_STOP, experiment_id, user="U0DEV1")
    update = slack.fake.wait_for_call("chat.update", "Ended")[0]
    assert update.params["ts"] == thread_ts
    assert buttons(update.blocks) == {}
    assert "Ended: cleared by dev1 at" in update.all_text()
    said = slack.fake.wait_for_call("chat.postMessage", "cleared (")[0]
    assert said.params["thread_ts"] == thread_ts and "<@U0DEV1>" in said.all_text()
    assert experiment(slack_app.store, experiment_id).state == "ended"
    last = audit_rows(slack_app.store)[-1]
    assert (last.actor_user_id, last.command, last.outcome) == (
        "U0DEV1",
        f"fault clear {experiment_id}",
        "ok",
    )


def test_extend_adds_ten_minutes_and_redraws_the_parent(slack: SlackClient, slack_app: SlackApp) -> None:
    experiment_id, _ = start_fault(slack)
    before = experiment(slack_app.store, experiment_id).expires_at
    slack.press(render.ACTION_EXTEND, experiment_id)
    update = slack.fake.wait_for_call("chat.update")[0]
    assert buttons(update.blocks) == {render.ACTION_STOP: experiment_id, render.ACTION_EXTEND: experiment_id}
    slack.fake.wait_for_call("chat.postMessage", "extended by 10m")
    assert experiment(slack_app.store, experiment_id).expires_at == before + timedelta(minutes=10)


def test_a_viewer_pressing_stop_is_denied_privately_and_the_fault_keeps_running(
    slack: SlackClient, slack_app: SlackApp
) -> None:
    experiment_id, _ = start_fault(slack)
    slack.press(render.ACTION_STOP, experiment_id, user="U0VIEW")
    denial = slack.fake.wait_for_call("chat.postEphemeral", "needs the operator role")[0]
    assert denial.params["user"] == "U0VIEW"
    assert experiment(slack_app.store, experiment_id).state == "active"
    assert audit_rows(slack_app.store)[-1].outcome == "denied"
    assert slack.fake.calls_to("chat.update") == []


def test_clearing_by_command_also_finishes_the_parent(slack: SlackClient, slack_app: SlackApp) -> None:
    experiment_id, _ = start_fault(slack)
    slack.command(f"fault clear {experiment_id}")
    update = slack.fake.wait_for_call("chat.update", "Ended")[0]
    assert update.params["ts"] == experiment(slack_app.store, experiment_id).thread_ts


def test_the_threads_api_for_a_scheduler(slack: SlackClient, slack_app: SlackApp) -> None:
    experiment_id, _ = start_fault(slack)
    threads = slack_app.app.state.threads
    stored = experiment(slack_app.store, experiment_id)
    # A scheduler running in its own thread uses the blocking forms.
    assert threads.post_to_thread_blocking(stored, "Guard tripped: 5xx rate 40% > 20%") is not None
    assert threads.finish_parent_blocking(stored, "Expired after 5m") is True
    said = slack.fake.wait_for_call("chat.postMessage", "Guard tripped")[0]
    assert said.params["thread_ts"] == stored.thread_ts
    assert "Expired after 5m" in slack.fake.wait_for_call("chat.update")[0].all_text()


def test_a_429_is_waited_out_as_retry_after_says(slack: SlackClient) -> None:
    slack.fake.script("chat.postMessage", 429, retry_after=1)
    slack.command(FAULT)
    slack.fake.wait_for_call("chat.postMessage", "Stop now")
    limited, posted = slack.fake.calls_to("chat.postMessage")[:2]
    assert (limited.status, posted.status) == (429, 200)
    assert posted.at - limited.at >= 1.0


def test_a_long_retry_after_is_not_waited_out(slack: SlackClient, slack_app: SlackApp) -> None:
    slack.fake.script("chat.postMessage", 429, retry_after=3600, times=3)
    slack.command(FAULT)
    # The parent could not be posted: the reply goes to the slash command's response_url instead.
    slack.fake.wait_for_call("response_url", "Experiment exp-")
    assert [c.status for c in slack.fake.calls_to("chat.postMessage")][:2] == [429, 429]
    assert experiment(slack_app.store, only_experiment_id(slack_app.store)).state == "active"


def test_slack_unreachable_loses_nothing(
    slack: SlackClient, slack_app: SlackApp, caplog: pytest.LogCaptureFixture
) -> None:
    slack.command("help")  # Bolt's auth.test is done and cached while Slack is still up
    slack.fake.wait_for_call("response_url", "meshbot commands")
    slack.fake.down = True
    with caplog.at_level(logging.ERROR, logger="bot"):
        slack.command(FAULT)
        wait_audit(slack_app.store, 2)
        slack.fake.wait_for(lambda calls: sum(1 for c in calls if c.status == 0) >= 2)
        metrics = slack.http.get("/metrics").text
    experiment_id = only_experiment_id(slack_app.store)
    assert experiment(slack_app.store, experiment_id).thread_ts is None
    assert any("chat.postMessage failed" in r.getMessage() for r in caplog.records)
    assert 'meshbot_slack_api_failures_total{method="chat.postMessage"}' in metrics
    slack.fake.down = False
    slack.command("fault list", user="U0VIEW")
    assert experiment_id in slack.fake.wait_for_call("response_url", "Active faults")[0].text


@dataclass(frozen=True)
class ReminderButton:
    """Shaped like bot.lifecycle.notify.Button."""

    text: str
    action_id: str
    value: str
    style: str | None = None


def test_the_lifecycle_notifier_talks_in_the_thread_and_the_channel(
    slack: SlackClient, slack_app: SlackApp
) -> None:
    experiment_id, _ = start_fault(slack)
    notifier = SlackNotifier(slack_app.app.state.threads)
    stored = experiment(slack_app.store, experiment_id)
    notifier.experiment_event(stored, "Ends in 2 minutes.")
    assert (
        slack.fake.wait_for_call("chat.postMessage", "Ends in 2 minutes")[0].params["thread_ts"]
        == stored.thread_ts
    )
    notifier.experiment_event(stored, "Expired: reverted.", final=True)
    assert "Expired: reverted." in slack.fake.wait_for_call("chat.update")[0].all_text()
    notifier.channel_message(
        CHANNEL,
        "Scheduled fault sch-1a2b runs in 10 minutes.",
        buttons=[ReminderButton("Postpone 1h", "meshbot_schedule_postpone", "sch-1a2b@1", "primary")],
    )
    reminder = slack.fake.wait_for_call("chat.postMessage", "sch-1a2b")[0]
    assert buttons(reminder.blocks) == {"meshbot_schedule_postpone": "sch-1a2b@1"}
    assert "thread_ts" not in reminder.params


def test_what_slack_did_not_take_is_said_in_the_thread_next_time(slack: SlackClient) -> None:
    experiment_id, _channel = start_fault(slack)
    thread_ts = slack.fake.wait_for_call("chat.postMessage", "VirtualServices")[0].params["thread_ts"]
    # A 504 is never tried again (Slack may have posted it): this thread message is lost.
    slack.fake.script("chat.postMessage", 504)
    slack.command(f"fault extend {experiment_id} 1m", user="U0OPS")
    slack.fake.wait_for_call("chat.postMessage", "extended by 1m")
    lost = [c for c in slack.fake.calls_to("chat.postMessage") if c.status == 504]
    assert len(lost) == 1 and lost[0].params["thread_ts"] == thread_ts

    slack.command(f"fault extend {experiment_id} 2m", user="U0OPS")
    slack.fake.wait_for_call("chat.postMessage", "extended by 2m")
    said = [
        c.all_text()
        for c in slack.fake.calls_to("chat.postMessage")
        if c.params.get("thread_ts") == thread_ts and c.status == 200
    ]
    backlog = [i for i, text in enumerate(said) if "Not delivered earlier" in text]
    assert len(backlog) == 1, said
    assert "extended by 1m" in said[backlog[0]], "the lost message is in the backlog"
    assert "extended by 2m" in said[backlog[0] + 1], "and the new one follows it"
