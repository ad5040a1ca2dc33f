"""Slash commands end to end: signatures, the ack, retries, and who may run what."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from playground.runner import Playground

from .conftest import (
    CHANNEL,
    SlackApp,
    SlackClient,
    audit_rows,
    only_experiment_id,
    sign,
    wait_audit,
)
from .fake_slack import TEAM_ID

FAULT = "fault delay 3s web-svc.emojivoto-istio"


def command_body(text: str = "fault list", user: str = "U0OPS") -> str:
    return urlencode(
        {
            "team_id": TEAM_ID,
            "channel_id": CHANNEL,
            "user_id": user,
            "user_name": "ops",
            "command": "/mesh",
            "text": text,
            "response_url": "http://127.0.0.1:9/never",
            "trigger_id": "t-forged",
        }
    )


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(lambda body: sign(body, secret="f" * 32), id="wrong-secret"),
        pytest.param(lambda body: sign(body, timestamp=int(time.time()) - 301), id="stale-timestamp"),
        pytest.param(lambda body: sign(body, timestamp=int(time.time()) + 600), id="future-timestamp"),
        pytest.param(lambda body: sign(body + "&text=install"), id="tampered-body"),
        pytest.param(lambda body: {}, id="unsigned"),
    ],
)
def test_a_bad_or_stale_signature_is_401_and_leaves_no_trace_but_a_log_line_and_a_metric(
    slack_app: SlackApp, headers: object, caplog: pytest.LogCaptureFixture
) -> None:
    body = command_body(FAULT)
    with TestClient(slack_app.app) as http:
        response = http.post(
            "/slack/events",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", **headers(body)},  # type: ignore[operator]
        )
        assert response.status_code == 401
        metrics = http.get("/metrics").text
    assert 'meshbot_slack_requests_rejected_total{reason="signature"} 1.0' in metrics
    assert audit_rows(slack_app.store) == []
    # Not even auth.test: the signature check comes before anything talks to Slack.
    assert slack_app.fake.calls == []
    assert any("refused a Slack request" in r.getMessage() for r in caplog.records)


def test_the_ack_comes_back_before_the_work_reaches_slack(
    slack: SlackClient, slack_app: SlackApp, playground: Playground
) -> None:
    # A slow API server, as a real cluster can be: the ack must not wait for it.
    playground.hooks.latency_seconds = 0.05
    sent = slack.command(FAULT)
    assert sent.response.status_code == 200
    assert sent.response.json() == {
        "text": ":hourglass_flowing_sand: Working on `/mesh fault delay 3s web-svc.emojivoto-istio`…",
        "response_type": "ephemeral",
    }
    parent = slack.fake.wait_for_call("chat.postMessage", "Stop now")[0]
    assert sent.acked_at < parent.at
    warm = slack.command("fault abort 503 voting-svc.emojivoto-istio 10%")
    second = slack.fake.wait_for_call("chat.postMessage", "Stop now", count=2)[1]
    assert warm.acked_at < second.at
    print(
        f"\nack latency: first request {sent.elapsed * 1000:.1f} ms (includes auth.test), "
        f"warm {warm.elapsed * 1000:.1f} ms; the fault's thread followed "
        f"{(parent.at - sent.acked_at) * 1000:.0f} ms after the ack"
    )


def test_a_retried_delivery_is_acknowledged_without_running_twice(slack_app: SlackApp) -> None:
    with TestClient(slack_app.app) as http:
        slack = SlackClient(http, slack_app.fake)
        first = slack.command(FAULT, trigger_id="t-once")
        retry = slack.command(
            FAULT,
            trigger_id="t-once",
            headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
        )
        assert first.response.status_code == retry.response.status_code == 200
        assert retry.response.text == ""
        slack.fake.wait_for_call("chat.postMessage", "Stop now")
        metrics = http.get("/metrics").text
    # The app has drained: whatever the retry could have started would have run by now.
    assert [(r.verb, r.outcome) for r in audit_rows(slack_app.store)] == [("fault", "ok")]
    assert len(slack_app.fake.calls_to("chat.postMessage")) == 2  # the parent and its first thread reply
    only_experiment_id(slack_app.store)
    assert "meshbot_slack_retries_ignored_total 1.0" in metrics


# user, command, expected audit outcome (None: asks for confirmation, nothing audited yet)
ROLE_CASES = [
    ("U0VIEW", "fault list", "ok"),
    ("U0VIEW", "help", "ok"),
    ("U0VIEW", "audit verb=fault", "ok"),
    ("U0VIEW", FAULT, "denied"),
    ("U0VIEW", "use emojivoto-istio", "denied"),
    ("U0VIEW", "fault clear all", "denied"),
    ("U0OPS", FAULT, "ok"),
    ("U0OPS", "use emojivoto-istio", "ok"),
    ("U0OPS", "fault delay 3s kubernetes.default", "denied"),  # not its namespace
    ("U0OPS", "fault delay 3s coredns.kube-system", "denied"),  # protected: admins only
    ("U0OPS", "fault clear all", "denied"),
    ("U0DEV1", FAULT, "ok"),  # operator through the S0DEV user group
    ("U0ADMIN", FAULT, "ok"),
    ("U0ADMIN", "fault clear all", None),
    ("U0SRE1", "fault clear all", None),  # admin through the S0SRE user group
    ("U0VIEW", "status", "ok"),
    ("U0VIEW", "mtls emojivoto-istio", "ok"),  # showing the mode only looks
    ("U0OPS", "mtls strict emojivoto-istio", "denied"),
    ("U0ADMIN", "mtls strict emojivoto-istio", None),
    ("U0VIEW", "install", "denied"),
    ("U0OPS", "uninstall", "denied"),
    ("U0ADMIN", "install", None),
    ("U0OPS", "inject emojivoto-istio", "ok"),
    ("U0VIEW", "inject emojivoto-istio", "denied"),
]


@pytest.mark.parametrize(("user", "text", "outcome"), ROLE_CASES)
def test_each_role_runs_what_it_may_and_a_denial_names_the_role(
    slack: SlackClient, slack_app: SlackApp, user: str, text: str, outcome: str | None
) -> None:
    sent = slack.command(text, user=user)
    assert sent.response.status_code == 200
    if outcome is None:
        question = slack.fake.wait_for_call("response_url", "Please confirm")[0]
        assert question.path == f"/response/{sent.trigger_id}"
        assert audit_rows(slack_app.store) == []
        return
    (row,) = wait_audit(slack_app.store, 1)
    assert (row.actor_user_id, row.actor_team_id, row.outcome) == (user, TEAM_ID, outcome)
    if outcome == "denied":
        answer = slack.fake.wait_for_call("response_url", "needs the")[0]
        admin_only = ("kube-system", "clear all", "install", "mtls")
        role = "admin" if any(word in text for word in admin_only) else "operator"
        assert f"roles.{role}" in answer.all_text()
        assert answer.params["response_type"] == "ephemeral"


def test_without_a_policy_file_everyone_may_look_and_nobody_may_change(
    make_slack_app: object, fake_slack: object
) -> None:
    app: SlackApp = make_slack_app(policy={})  # type: ignore[operator]
    with TestClient(app.app) as http:
        slack = SlackClient(http, app.fake)
        slack.command("fault list", user="U0ADMIN")
        slack.command(FAULT, user="U0ADMIN")
        rows = wait_audit(app.store, 2)
    assert sorted(r.outcome for r in rows) == ["denied", "ok"]


def test_roles_are_decided_on_team_and_user_id_not_the_user_name(
    make_slack_app: object, fake_slack: object
) -> None:
    policy = {
        "roles": {"operator": {"users": ["U0OPS"]}, "viewer": {"users": ["*"]}},
        "slack_teams": [TEAM_ID],
    }
    app: SlackApp = make_slack_app(policy=policy)  # type: ignore[operator]
    with TestClient(app.app) as http:
        slack = SlackClient(http, app.fake)
        # Same user id, another workspace (a shared channel): not the operator listed.
        slack.command(FAULT, user="U0OPS", team="T0OTHER")
        (row,) = wait_audit(app.store, 1)
        assert (row.actor_team_id, row.outcome) == ("T0OTHER", "denied")
        # The user name "ops" is what the operator is called; a viewer may name themselves so.
        slack.command(FAULT, user="U0MALLORY", user_name="ops")
        rows = wait_audit(app.store, 2)
    assert rows[-1].outcome == "denied"
