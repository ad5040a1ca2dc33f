"""Who sees an answer: looking (`status`, `fault list`, `audit`) answers the person alone unless
`--share` asks for the channel; commands that change the cluster answer where everyone sees them."""

from __future__ import annotations

import json

from .conftest import SlackApp, SlackClient, audit_rows, wait_audit

NS = "emojivoto-istio"


def test_status_answers_the_person_alone(slack: SlackClient, slack_app: SlackApp) -> None:
    slack.command(f"status {NS}", user="U0OPS")
    (answer,) = slack.fake.wait_for_call("response_url", "Control plane")
    assert answer.params["response_type"] == "ephemeral"
    assert not [c for c in slack.fake.calls_to("chat.postMessage") if "Control plane" in c.all_text()]
    wait_audit(slack_app.store, 1)


def test_status_share_posts_to_the_channel(slack: SlackClient, slack_app: SlackApp) -> None:
    slack.command(f"status {NS} --share", user="U0OPS")
    (posted,) = slack.fake.wait_for_call("chat.postMessage", "Control plane")
    # The first line is mrkdwn: Slack shows *default* bold, not with its asterisks.
    first = posted.params["blocks"][0]
    assert first["type"] == "section" and first["text"]["type"] == "mrkdwn"
    (row,) = wait_audit(slack_app.store, 1)
    assert row.outcome == "ok"


def test_share_on_a_command_that_changes_things_is_refused_and_changes_nothing(
    slack: SlackClient, slack_app: SlackApp
) -> None:
    slack.command(f"fault delay 3s web-svc.{NS} --share", user="U0OPS")
    (answer,) = slack.fake.wait_for_call("response_url", "--share is for answers")
    assert answer.params["response_type"] == "ephemeral"
    # Once in the message Slack shows (the fallback `text` is for notifications only).
    assert json.dumps(answer.params["blocks"]).count("--share is for answers that only show something") == 1
    (row,) = wait_audit(slack_app.store, 1)
    assert row.outcome == "refused"
    assert slack.fake.calls_to("chat.postMessage") == []
    assert len(audit_rows(slack_app.store)) == 1
