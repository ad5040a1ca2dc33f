"""Two replicas behind one Service: Slack sends each request to either, and they share one
database. A question asked on one is answered on the other, a retry is caught by the other, and
an expired question is withdrawn once however many replicas sweep.

Each replica is its own ``create_app()`` with its own engine on the same SQLite file, the same
playground cluster and the same fake Slack, as two pods would have.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.pipeline import Pipeline
from bot.slack import messages, render
from bot.slack.front import SlackFront
from core.clock import utcnow
from core.policy import Policy
from core.store import Store, list_expired_confirmations
from mesh.kube import for_url
from playground.runner import Playground

from .conftest import ROLES, SlackClient, audit_rows, buttons, only_experiment_id, settings_for, wait_audit
from .fake_slack import FakeSlack
from .test_confirmations import RISKY, ask


@dataclass
class Replica:
    slack: SlackClient
    http: TestClient

    @property
    def front(self) -> SlackFront:
        front: SlackFront | None = self.http.app.state.parts.front  # type: ignore[attr-defined]
        assert front is not None
        return front

    def expire_questions(self) -> int:
        return int(self.http.portal.call(self.front.expire_questions))  # type: ignore[union-attr]


@pytest.fixture
def replicas(
    playground: Playground, store: Store, fake_slack: FakeSlack
) -> Iterator[Callable[..., tuple[Replica, Replica]]]:
    """``replicas(policy)`` → two running apps, A and B, over one database."""
    with ExitStack() as stack:

        def start(policy: dict[str, Any] | None = None) -> tuple[Replica, Replica]:
            chosen = Policy.model_validate({"roles": ROLES, **(policy or {})})
            started = []
            for _ in range(2):
                # Its own engine and pool, as another pod's would be; only the file is shared.
                own = Store.from_url(str(store.engine.url))
                stack.callback(own.dispose)
                pipeline = Pipeline(store=own, kube=for_url(playground.url), policy=chosen)
                http = stack.enter_context(
                    TestClient(create_app(settings_for(fake_slack), pipeline=pipeline))
                )
                started.append(Replica(SlackClient(http, fake_slack), http))
            return started[0], started[1]

        yield start


def test_a_question_asked_on_one_replica_is_confirmed_on_the_other_and_runs_once(
    replicas: Callable[..., tuple[Replica, Replica]], store: Store
) -> None:
    a, b = replicas()
    token = ask(a.slack)
    pressed = b.slack.press(render.ACTION_CONFIRM, token, ephemeral=True)
    b.slack.fake.wait_for_call("chat.postMessage", "Stop now")
    replaced = b.slack.fake.wait_for_call("response_url", "Confirmed")[0]
    assert replaced.path == pressed.response_url.removeprefix(b.slack.fake.base)
    (row,) = wait_audit(store, 1)
    assert (row.actor_user_id, row.command, row.outcome) == ("U0OPS", RISKY, "ok")
    assert row.message.startswith("[confirmed] Experiment exp-")
    only_experiment_id(store)
    # A second press, on either replica, finds the question answered.
    a.slack.press(render.ACTION_CONFIRM, token)
    b.slack.press(render.ACTION_CONFIRM, token)
    a.slack.fake.wait_for_call("chat.postEphemeral", "already answered or has expired", count=2)
    assert len(audit_rows(store)) == 1
    assert len(a.front.confirmations) == 0


def test_cancel_on_the_other_replica_withdraws_the_question_once(
    replicas: Callable[..., tuple[Replica, Replica]], store: Store
) -> None:
    a, b = replicas()
    token = ask(a.slack)
    b.slack.press(render.ACTION_CANCEL, token)
    b.slack.fake.wait_for_call("response_url", "cancelled by ops")
    a.slack.press(render.ACTION_CONFIRM, token)
    a.slack.fake.wait_for_call("chat.postEphemeral", "already answered or has expired")
    assert [(r.outcome, r.message) for r in audit_rows(store)] == [("refused", "cancelled by ops")]


def test_a_refused_approval_on_one_replica_leaves_the_question_open_on_the_other(
    replicas: Callable[..., tuple[Replica, Replica]], store: Store
) -> None:
    a, b = replicas({"two_person_namespaces": ["emojivoto-istio"]})
    a.slack.command("fault delay 3s web-svc.emojivoto-istio")
    question = a.slack.fake.wait_for_call("chat.postMessage", "Approval needed")[0]
    token = buttons(question.blocks)[render.ACTION_APPROVE]
    b.slack.press(render.ACTION_APPROVE, token, user="U0VIEW")
    b.slack.fake.wait_for_call("chat.postEphemeral", "may not approve this")
    wait_audit(store, 1)
    a.slack.press(render.ACTION_APPROVE, token, user="U0DEV1")
    a.slack.fake.wait_for_call("response_url", "Approved by dev1")
    rows = wait_audit(store, 2)
    assert [(r.actor_user_id, r.outcome) for r in rows] == [("U0OPS", "denied"), ("U0OPS", "ok")]
    only_experiment_id(store)


def test_a_retry_sent_to_the_other_replica_does_not_run_again(
    replicas: Callable[..., tuple[Replica, Replica]], store: Store
) -> None:
    a, b = replicas()
    first = a.slack.command("fault delay 3s web-svc.emojivoto-istio", trigger_id="t-once")
    retry = b.slack.command(
        "fault delay 3s web-svc.emojivoto-istio",
        trigger_id="t-once",
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    assert first.response.status_code == retry.response.status_code == 200
    assert retry.response.text == ""
    a.slack.fake.wait_for_call("chat.postMessage", "Stop now")
    # b claims the delivery after its ack, on its own loop: poll for the count, bounded.
    deadline = time.monotonic() + 5
    while "meshbot_slack_retries_ignored_total 1.0" not in b.http.get("/metrics").text:
        assert time.monotonic() < deadline, "b never counted the retry it ignored"
        time.sleep(0.05)
    assert "meshbot_slack_retries_ignored_total 0.0" in a.http.get("/metrics").text
    # Give a wrongly started second run time to show up before counting.
    time.sleep(0.5)
    assert [(r.verb, r.outcome) for r in audit_rows(store)] == [("fault", "ok")]
    only_experiment_id(store)


def test_an_expired_question_is_withdrawn_once_while_both_replicas_sweep(
    replicas: Callable[..., tuple[Replica, Replica]], store: Store
) -> None:
    a, b = replicas({"two_person_namespaces": ["emojivoto-istio"], "confirm": {"expires_after": 0.2}})
    a.slack.command("fault delay 3s web-svc.emojivoto-istio")
    question = a.slack.fake.wait_for_call("chat.postMessage", "Approval needed")[0]
    time.sleep(0.3)
    with store.read() as session:
        (held,) = list_expired_confirmations(session=session, now=utcnow())
    assert held.message_ts is not None
    withdrawn: list[int] = []
    barrier = threading.Barrier(2)

    def sweep(replica: Replica) -> None:
        barrier.wait()
        withdrawn.append(replica.expire_questions())

    sweepers = [threading.Thread(target=sweep, args=(r,)) for r in (a, b)]
    for sweeper in sweepers:
        sweeper.start()
    for sweeper in sweepers:
        sweeper.join(timeout=30)
    assert sorted(withdrawn) == [0, 1]
    # Whichever replica won found the channel message (recorded in the store) to take the button off.
    update = a.slack.fake.wait_for_call("chat.update", messages.NOT_CONFIRMED_IN_TIME)[0]
    assert (update.params["channel"], update.params["ts"]) == (question.params["channel"], held.message_ts)
    assert buttons(update.blocks) == {}
    assert len(a.slack.fake.calls_to("chat.update")) == 1
    assert [(r.outcome, r.message) for r in audit_rows(store)] == [
        ("refused", "not confirmed in time; nothing was done")
    ]
