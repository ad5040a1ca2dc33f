"""Under load: a full lane answers "busy" at once, and ending a fault never waits behind reads."""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi.testclient import TestClient

from bot.app import create_app
from bot.pipeline import Pipeline
from bot.slack import messages, render
from bot.work import Lane, Lanes, LaneSizes, Priority, urgent_command
from core.policy import Policy
from core.store import Store
from mesh.kube import for_url
from playground.runner import Playground

from .conftest import ROLES, SlackClient, buttons, settings_for
from .fake_slack import FakeSlack

FAULT = "fault delay 3s web-svc.emojivoto-istio for 5m"
# status lists namespaces first; a hang there holds every status in its worker thread.
NAMESPACES = r"^/api/v1/namespaces$"


def test_typed_commands_that_end_or_extend_a_fault_are_urgent() -> None:
    assert urgent_command("fault clear exp-1") and urgent_command("  fault extend exp-1 10m")
    assert not urgent_command("status") and not urgent_command("fault delay 3s web-svc")


def small_lanes() -> Lanes:
    return Lanes(commands=LaneSizes(workers=1, queue=1), urgent=LaneSizes(workers=1, queue=1))


def small_app(playground: Playground, store: Store, fake: FakeSlack, lanes: Lanes) -> Any:
    pipeline = Pipeline(
        store=store, kube=for_url(playground.url), policy=Policy.model_validate({"roles": ROLES})
    )
    return create_app(settings_for(fake), pipeline=pipeline, lanes=lanes)


def wait_until_free(lane: Lane) -> None:
    # A command holds its place until its last follow-up in Slack is posted, a moment after the
    # messages a test waits for.
    deadline = time.monotonic() + 10
    while lane.taken:
        assert time.monotonic() < deadline, f"the {lane.name} lane never emptied"
        time.sleep(0.02)


def start_fault(slack: SlackClient, lanes: Lanes) -> str:
    """A running fault, and the command lane empty again: the fault's id."""
    slack.command(FAULT)
    parent = slack.fake.wait_for_call("chat.postMessage", "Stop now")[0]
    slack.fake.wait_for_call("chat.postMessage", "VirtualServices")
    wait_until_free(lanes.commands)
    return buttons(parent.blocks)[render.ACTION_STOP]


def test_a_full_command_lane_says_busy_at_once_and_stop_still_ends_the_fault(
    playground: Playground, store: Store, fake_slack: FakeSlack
) -> None:
    lanes = small_lanes()
    with TestClient(small_app(playground, store, fake_slack, lanes)) as http:
        slack = SlackClient(http, fake_slack)
        experiment_id = start_fault(slack, lanes)

        playground.hooks.hang_next(NAMESPACES, 2, seconds=3, method="GET")
        held = [slack.command("status"), slack.command("status")]  # one running, one queued
        refused = slack.command("status")
        assert all(s.response.json()["text"] == messages.working_on("status") for s in held)
        assert refused.response.json() == {"text": messages.BUSY, "response_type": "ephemeral"}

        slack.press(render.ACTION_STOP, experiment_id, user="U0DEV1")
        ended = fake_slack.wait_for_call("chat.update", "Ended")[0]
        # Read-only answers go to the person alone (response_url) unless --share.
        answers = fake_slack.wait_for_call("response_url", "*Control plane*", count=2)
        # The Stop ran while both statuses were still held by the hanging API server.
        assert all(ended.at < answer.at for answer in answers)
        metrics = http.get("/metrics").text
    assert 'meshbot_slack_busy_total{lane="commands"} 1.0' in metrics


def test_fault_clear_typed_takes_the_urgent_lane_past_a_full_command_lane(
    playground: Playground, store: Store, fake_slack: FakeSlack
) -> None:
    lanes = small_lanes()
    with TestClient(small_app(playground, store, fake_slack, lanes)) as http:
        slack = SlackClient(http, fake_slack)
        experiment_id = start_fault(slack, lanes)
        playground.hooks.hang_next(NAMESPACES, 2, seconds=3, method="GET")
        slack.command("status")
        slack.command("status")
        clear = slack.command(f"fault clear {experiment_id}")
        assert clear.response.json()["text"] == messages.working_on(f"fault clear {experiment_id}")
        ended = fake_slack.wait_for_call("chat.update", "Ended")[0]
        # Read-only answers go to the person alone (response_url) unless --share.
        answers = fake_slack.wait_for_call("response_url", "*Control plane*", count=2)
        assert all(ended.at < answer.at for answer in answers)


def test_a_command_not_yet_started_waits_while_a_fault_is_being_ended() -> None:
    # Threads share one interpreter lock: a command starting during a Stop slows the Stop down.
    priority = Priority()
    started = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def stop() -> None:
        started.set()
        release.wait(5)
        order.append("stop")

    urgent = threading.Thread(target=lambda: priority.as_urgent(stop))
    urgent.start()
    assert started.wait(5)
    command = threading.Thread(target=lambda: priority.after_urgent(lambda: order.append("status")))
    command.start()
    command.join(0.3)
    assert command.is_alive() and order == [], "the command waits while the Stop runs"
    release.set()
    urgent.join(5)
    command.join(5)
    assert order == ["stop", "status"]


def test_a_command_waits_for_urgent_work_only_so_long() -> None:
    priority = Priority()
    with priority.urgent():
        began = time.monotonic()
        priority.yield_to_urgent(longest=0.2)
        waited = time.monotonic() - began
    assert waited >= 0.2, "it did wait"
    assert waited < 5, "a stream of Stops cannot starve other commands"
    began = time.monotonic()
    priority.yield_to_urgent(longest=5)
    assert time.monotonic() - began < 1, "with nothing urgent under way it starts at once"
