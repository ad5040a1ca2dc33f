"""Every kind of message meshbot sends Slack keeps to Block Kit's rules, and can be looked at.

A first hour with meshbot is driven through the signed endpoint — status, help, a fault with its
thread and buttons, a refusal, a denial, a confirmation question and its answer, a two-person
question, a clear, a long audit listing — and every message the fake Slack received is checked
against tests/slack/blockkit.py. The same messages are drawn to an HTML page (in the test's
temporary folder; set PREVIEW_SLACK_HTML=<file> to keep it) so a person can see them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bot.slack import render

from . import blockkit
from .conftest import SlackClient, buttons

SHOWN = ("chat.postMessage", "chat.update", "chat.postEphemeral", "response_url")


def _messages(slack: SlackClient) -> list[tuple[str, list[dict[str, Any]]]]:
    return [
        (f"{c.method} {c.text[:60]}", c.blocks) for c in slack.fake.calls if c.method in SHOWN and c.blocks
    ]


def test_a_first_hour_in_slack_keeps_to_block_kit_and_can_be_looked_at(
    slack: SlackClient, tmp_path: Path
) -> None:
    slack.command("status --share")
    slack.command("help")
    slack.command("help fault")
    slack.command("fault delay 3s web-svc.emojivoto-istio for 5m")
    parent = slack.fake.wait_for_call("chat.postMessage", "Stop now")[0]
    experiment_id = buttons(parent.blocks)[render.ACTION_STOP]
    slack.command("fault list")
    slack.command("staus")  # a typo: the suggestion
    slack.command("fault abort 500 50 web-svc")  # a usage error pointing at the word
    slack.command("install", user="U0VIEW")  # denied
    slack.command("fault abort 503 emoji-svc.emojivoto-istio 90%")  # asks first
    question = slack.fake.wait_for_call("response_url", "Please confirm")[0]
    slack.press(render.ACTION_CONFIRM, buttons(question.blocks)[render.ACTION_CONFIRM])
    slack.fake.wait_for_call("response_url", "Confirmed")
    slack.press(render.ACTION_EXTEND, experiment_id)
    slack.fake.wait_for_call("chat.update", "Fault")
    slack.command("fault clear all", user="U0ADMIN")
    slack.fake.wait_for_call("response_url", "Please confirm")
    slack.command("audit limit=50")
    slack.fake.wait_for_call("response_url", "fault")

    messages = _messages(slack)
    assert len(messages) >= 12, [title for title, _ in messages]
    broken = {title: found for title, blocks in messages if (found := blockkit.problems(blocks))}
    assert broken == {}

    page = blockkit.preview_html(messages)
    (tmp_path / "slack.html").write_text(page)
    if keep := os.environ.get("PREVIEW_SLACK_HTML"):
        Path(keep).write_text(page)
    # What a person sees (the blocks, not the notification text): bold where meshbot meant bold,
    # buttons, no literal mrkdwn asterisks.
    shown = blockkit.preview_html([("", blocks) for _title, blocks in messages])
    assert "<b>Control plane</b>" in shown
    assert "<button class='danger'>Stop now</button>" in shown
    assert "*Control plane*" not in shown


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


@pytest.mark.parametrize(
    ("blocks", "problem"),
    [
        ([_section("x")] * 51, "51 blocks"),
        ([{"type": "header", "text": {"type": "mrkdwn", "text": "*bold*"}}], "must be plain_text"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "more than 150"),
        ([_section("s" * 3001)], "more than 3000"),
        ([_section("")], "empty text"),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "1"}},
                        {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "2"}},
                    ],
                }
            ],
            "action_id repeated",
        ),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}], "11 fields"),
        ([{"type": "table"}], "unknown block type"),
    ],
)
def test_the_checker_catches_what_slack_refuses(blocks: list[dict[str, Any]], problem: str) -> None:
    # The check above is only as good as this: each rule Slack enforces is caught.
    assert any(problem in found for found in blockkit.problems(blocks)), blockkit.problems(blocks)
