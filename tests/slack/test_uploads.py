"""A reply's images in Slack: a shared reply's go beside it (its fault's thread when it has one),
an ephemeral reply's are not shown (a response_url carries no files), and say so."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.slack import messages
from bot.slack.front import Origin
from core.store import Actor
from handlers.reply import Attachment, Reply

from .conftest import CHANNEL, SlackApp, SlackClient, experiment
from .fake_slack import TEAM_ID
from .test_threads import start_fault

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
CHART = Attachment(name="card.png", content=PNG, title="Error rate during the fault")


def deliver(slack_app: SlackApp, reply: Reply, origin: Origin) -> None:
    """The front's own delivery, on the app's loop, as after a command."""
    state: Any = slack_app.app.state
    future = asyncio.run_coroutine_threadsafe(
        state.parts.front.deliver(reply, origin), state.threads.require_loop()
    )
    future.result(10)


def test_an_image_for_a_fault_goes_into_its_thread(slack: SlackClient, slack_app: SlackApp) -> None:
    experiment_id, _ = start_fault(slack)
    running = experiment(slack_app.store, experiment_id)

    assert slack_app.app.state.threads.upload_blocking(running, CHART)

    (shared,) = slack.fake.shared_files()
    assert (shared.channel, shared.thread_ts, shared.title) == (CHANNEL, running.thread_ts, CHART.title)
    assert shared.content == PNG


def test_a_shared_reply_about_a_fault_puts_its_images_in_the_faults_thread(
    slack: SlackClient, slack_app: SlackApp
) -> None:
    experiment_id, _ = start_fault(slack)
    thread_ts = experiment(slack_app.store, experiment_id).thread_ts
    origin = Origin(Actor(user_id="U0OPS", team_id=TEAM_ID), CHANNEL)

    deliver(slack_app, Reply("Report card", experiment_id=experiment_id, attachments=(CHART,)), origin)

    slack.fake.wait_for_call("chat.postMessage", "Report card")
    (shared,) = slack.fake.shared_files()
    assert (shared.channel, shared.thread_ts) == (CHANNEL, thread_ts)


def test_an_ephemeral_reply_says_its_image_is_not_shown_and_uploads_nothing(
    slack: SlackClient, slack_app: SlackApp
) -> None:
    origin = Origin(Actor(user_id="U0OPS", team_id=TEAM_ID), CHANNEL, slack.fake.response_url("eph"))

    deliver(slack_app, Reply("Service graph", ephemeral=True, attachments=(CHART,)), origin)

    (posted,) = slack.fake.wait_for_call("response_url", "Service graph")
    assert "Image not shown in an ephemeral reply; add --share" in posted.all_text()
    assert messages.IMAGES_NOT_SHOWN.strip("_") in posted.text
    assert not slack.fake.calls_to("files.getUploadURLExternal")
