"""Slack failing: a 5xx or a connection never made is tried again, with back-off and a bound;
nothing Slack may have received is sent twice; what could not be delivered is logged and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bot.slack import client as slack_client
from bot.slack import render

from .conftest import SlackApp, SlackClient, audit_rows, buttons, experiment, only_experiment_id, wait_audit

FAULT = "fault delay 3s web-svc.emojivoto-istio"


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(slack_client, "BACKOFF_SECONDS", 0.05)
    yield


def statuses(slack: SlackClient, method: str, contains: str = "") -> list[int]:
    return [c.status for c in slack.fake.calls_to(method) if contains in c.all_text()]


def test_a_500_is_tried_again_and_the_message_arrives_once(slack: SlackClient, slack_app: SlackApp) -> None:
    slack.fake.script("chat.postMessage", 500)
    slack.command(FAULT)
    slack.fake.wait_for_call("chat.postMessage", "VirtualServices")
    assert statuses(slack, "chat.postMessage", "Stop now") == [500, 200]
    metrics = slack.http.get("/metrics").text
    assert "meshbot_slack_api_failures_total{" not in metrics
    assert experiment(slack_app.store, only_experiment_id(slack_app.store)).thread_ts is not None


@pytest.mark.parametrize("status", [502, 503])
def test_other_failures_slack_reports_are_tried_again(slack: SlackClient, status: int) -> None:
    slack.fake.script("chat.postMessage", status)
    slack.command(FAULT)
    slack.fake.wait_for_call("chat.postMessage", "Stop now")
    assert statuses(slack, "chat.postMessage", "Stop now") == [status, 200]


def test_the_confirm_question_of_clear_all_survives_a_500_on_response_url(
    slack: SlackClient, slack_app: SlackApp
) -> None:
    slack.fake.script("response_url", 500)
    sent = slack.command("fault clear all", user="U0ADMIN")
    question = slack.fake.wait_for_call("response_url", "Please confirm", path=f"/response/{sent.trigger_id}")
    assert len(question) == 1
    assert [c.status for c in slack.fake.calls_to("response_url")] == [500, 200]
    slack.press(render.ACTION_CONFIRM, buttons(question[0].blocks)[render.ACTION_CONFIRM], user="U0ADMIN")
    (row,) = wait_audit(slack_app.store, 1)
    assert row.message.startswith("[confirmed]")


def test_slack_failing_every_time_is_given_up_counted_and_logged_and_the_command_stands(
    slack: SlackClient, slack_app: SlackApp, caplog: pytest.LogCaptureFixture
) -> None:
    slack.fake.script("chat.postMessage", 500, times=50)
    with caplog.at_level(logging.INFO, logger="bot"):
        slack.command(FAULT)
        # The parent could not be posted: the reply goes to the response_url instead.
        slack.fake.wait_for_call("response_url", "Experiment exp-")
        metrics = slack.http.get("/metrics").text
    assert statuses(slack, "chat.postMessage", "Stop now") == [500] * (slack_client.MAX_RETRIES + 1)
    # The parent, then the reply in the channel; each given up after its retries.
    assert 'meshbot_slack_api_failures_total{method="chat.postMessage"} 2.0' in metrics
    failures = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("Slack chat.postMessage failed" in line for line in failures), failures
    retried = [r.getMessage() for r in caplog.records if "trying again" in r.getMessage()]
    assert retried == ["Slack answered 500, trying again: chat.postMessage"] * 2 * slack_client.MAX_RETRIES
    (row,) = audit_rows(slack_app.store)
    assert (row.verb, row.outcome) == ("fault", "ok")
    assert experiment(slack_app.store, only_experiment_id(slack_app.store)).state == "active"


def test_a_504_is_not_tried_again_as_slack_may_have_posted_it(slack: SlackClient) -> None:
    slack.fake.script("chat.postMessage", 504)
    slack.command(FAULT)
    # No thread: the reply goes to the channel as a plain message.
    slack.fake.wait_for_call("chat.postMessage", "Experiment exp-")
    assert statuses(slack, "chat.postMessage", "Stop now") == [504]


def test_a_post_whose_connection_broke_after_sending_is_not_sent_twice(
    slack: SlackClient, slack_app: SlackApp
) -> None:
    slack.fake.script("chat.postMessage", 0)
    slack.command(FAULT)
    slack.fake.wait_for_call("chat.postMessage", "Experiment exp-")
    assert statuses(slack, "chat.postMessage", "Stop now") == [0]
    metrics = slack.http.get("/metrics").text
    assert 'meshbot_slack_api_failures_total{method="chat.postMessage"} 1.0' in metrics


def test_an_update_whose_connection_broke_is_tried_again(slack: SlackClient, slack_app: SlackApp) -> None:
    slack.command(FAULT)
    parent = slack.fake.wait_for_call("chat.postMessage", "Stop now")[0]
    slack.fake.wait_for_call("chat.postMessage", "VirtualServices")
    slack.fake.script("chat.update", 0)
    slack.press(render.ACTION_STOP, buttons(parent.blocks)[render.ACTION_STOP])
    slack.fake.wait_for_call("chat.update", "Ended")
    assert statuses(slack, "chat.update", "Ended") == [0, 200]


def test_a_connection_never_made_is_tried_again(slack: SlackClient, slack_app: SlackApp) -> None:
    import asyncio

    from aiohttp import ClientConnectorError
    from aiohttp.client_reqrep import ConnectionKey
    from slack_sdk.http_retry.request import HttpRequest
    from slack_sdk.http_retry.state import RetryState

    key = ConnectionKey("slack.com", 443, True, None, None, None, None)
    refused = ClientConnectorError(key, ConnectionRefusedError(111, "refused"))
    request = HttpRequest(method="POST", url="https://slack.com/api/chat.postMessage", headers={})
    retry = slack_client.FailureRetry()
    assert asyncio.run(retry.can_retry_async(state=RetryState(), request=request, error=refused))
    assert not asyncio.run(
        retry.can_retry_async(state=RetryState(), request=request, error=ConnectionResetError())
    )
