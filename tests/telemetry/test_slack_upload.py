"""`/mesh graph` from Slack: the text in the channel, then the picture uploaded with files_upload_v2
to the fake Slack (the real three steps: upload URL, the bytes, completion)."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.slack.conftest import CHANNEL, SlackClient

from .conftest import NS, Mesh, slack_app


@pytest.fixture
def slack(mesh: Mesh, tmp_path: Path) -> Iterator[SlackClient]:
    with slack_app(mesh.playground.url, mesh.prometheus.url, tmp_path) as client:
        yield client


def test_graph_from_slack_uploads_the_png_to_the_channel_with_its_title(slack: SlackClient) -> None:
    slack.command(f"graph -n {NS} --share")

    slack.fake.wait_for_call("chat.postMessage", "vote-bot → web (http)")
    slack.fake.wait_for_call("files.completeUploadExternal")
    (shared,) = slack.fake.shared_files()
    assert (shared.channel, shared.thread_ts) == (CHANNEL, None)
    assert shared.filename == f"graph-{NS}.png"
    assert shared.title == f"Service graph of {NS}, last 10m"
    assert shared.content is not None
    image = Image.open(io.BytesIO(shared.content))
    assert image.format == "PNG" and image.width >= 300 and image.height >= 100
    order = [c.method for c in slack.fake.calls if c.method != "auth.test"]
    assert order[-4:] == [
        "chat.postMessage",
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ], "the text first, then the three steps of files_upload_v2"


def wait_for_metric(slack: SlackClient, line: str, timeout: float = 5.0) -> bool:
    # The count follows the failed call by a moment, on the app's loop.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if line in slack.http.get("/metrics").text:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize(
    ("broken", "status", "said"),
    [
        ("files.getUploadURLExternal", None, "invalid_arguments"),
        ("upload", 0, "Server disconnected"),
        ("files.completeUploadExternal", None, "not_in_channel"),
    ],
)
def test_a_failed_upload_leaves_the_text_delivered_logged_and_counted(
    slack: SlackClient, caplog: pytest.LogCaptureFixture, broken: str, status: int | None, said: str
) -> None:
    if status is None:
        slack.fake.refuse(broken, said)
    else:
        slack.fake.script(broken, status)
    with caplog.at_level(logging.ERROR):
        slack.command(f"graph -n {NS} --share")
        slack.fake.wait_for_call("chat.postMessage", "vote-bot → web (http)")
        slack.fake.wait_for(lambda calls: any(c.method == broken for c in calls))
        assert wait_for_metric(slack, 'meshbot_slack_api_failures_total{method="files_upload_v2"} 1.0')
    assert slack.fake.shared_files() == []
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(f"Slack files_upload_v2 failed for channel {CHANNEL}" in e and said in e for e in errors), (
        errors
    )
