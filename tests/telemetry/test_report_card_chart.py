"""Report cards for faults ended by a command: `fault clear` typed in Slack and the Stop button.
Their thread gets the card's text and its chart (a PNG through files_upload_v2), and the parent
its final state. Prometheus is the backfilled one, where web-svc's mesh callers see a 50% abort."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from bot.slack import render
from handlers.images import CALLER_COLOURS, CARD_CHART_SIZE, WINDOW_COLOUR
from playground.runner import Playground
from tests.slack.conftest import SlackClient, buttons

from .conftest import NS, Mesh, recorded_thread_ts, slack_app


@pytest.fixture
def slack(mesh: Mesh, make_playground: Callable[..., Playground], tmp_path: Path) -> Iterator[SlackClient]:
    # A playground of its own: the faults here must not show in the shared mesh's other tests.
    playground = make_playground("article")
    with slack_app(playground.url, mesh.prometheus.url, tmp_path, card_tail_seconds=1) as client:
        yield client


def _hex(colour: str) -> tuple[int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


def _start(slack: SlackClient) -> tuple[str, str]:
    slack.command(f"fault abort 500 40% web-svc.{NS} for 5m")
    parent = slack.fake.wait_for_call("chat.postMessage", "Stop now")[0]
    experiment_id = buttons(parent.blocks)[render.ACTION_STOP]
    return experiment_id, recorded_thread_ts(slack, experiment_id)


def _check_card(slack: SlackClient, experiment_id: str, how: str) -> None:
    thread_ts = recorded_thread_ts(slack, experiment_id)
    card = slack.fake.wait_for_call("chat.postMessage", "Report card", timeout=20)[0]
    assert card.params["thread_ts"] == thread_ts
    assert how in card.all_text() and "Proof of effect: abort 500 at 40%: observed" in card.all_text()
    update = slack.fake.wait_for_call("chat.update", "Ended")[0]
    assert update.params["ts"] == thread_ts and render.ACTION_STOP not in buttons(update.blocks)

    slack.fake.wait_for_call("files.completeUploadExternal", timeout=20)
    (shared,) = slack.fake.shared_files()
    assert shared.thread_ts == thread_ts and shared.filename == f"report-{experiment_id}.png"
    assert shared.content is not None
    image = Image.open(io.BytesIO(shared.content))
    assert image.format == "PNG" and image.size == CARD_CHART_SIZE
    colours = {c for _, c in image.convert("RGB").getcolors(maxcolors=1 << 20) or []}
    assert _hex(WINDOW_COLOUR) in colours, "the fault's window is shaded"
    # vote-bot and web (the ingress gateway) both call web-svc in the backfilled mesh: two lines.
    assert {_hex(c) for c in CALLER_COLOURS[:2]} <= colours, "a line per caller"


def test_fault_clear_in_slack_posts_the_card_and_its_chart_into_the_thread(slack: SlackClient) -> None:
    experiment_id, _ = _start(slack)
    slack.command(f"fault clear {experiment_id}")
    _check_card(slack, experiment_id, "cleared by")


def test_the_stop_button_posts_the_card_and_its_chart_into_the_thread(slack: SlackClient) -> None:
    experiment_id, _ = _start(slack)
    slack.press(render.ACTION_STOP, experiment_id, user="U0OPS")
    _check_card(slack, experiment_id, "cleared by")
