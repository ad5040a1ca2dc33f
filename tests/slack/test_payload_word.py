"""A slash command that mentions "payload" — a service called payload-api, say — runs like any
other. Bolt reads every form body containing that word as a button press and answered 404
"unhandled request", which Slack shows as a failure, with nothing audited."""

from __future__ import annotations

from urllib.parse import urlencode

import kubernetes.client

from core.store import Store
from playground.runner import Playground
from tests.conftest import kube_client_for

from .conftest import CHANNEL, SlackClient, audit_rows, only_experiment_id, sign, wait_audit
from .fake_slack import TEAM_ID

NS = "emojivoto-istio"


def test_a_fault_on_a_service_called_payload_api_starts_from_slack(
    slack: SlackClient, playground: Playground, store: Store
) -> None:
    with kube_client_for(playground) as api_client:
        kubernetes.client.CoreV1Api(api_client).create_namespaced_service(
            NS,
            {
                "metadata": {"name": "payload-api"},
                "spec": {"selector": {"app": "payload-api"}, "ports": [{"name": "http", "port": 80}]},
            },
        )
    sent = slack.command(f"fault delay 3s payload-api.{NS} for 5m")
    assert sent.response.status_code == 200
    assert "Working on `/mesh fault delay 3s payload-api" in sent.response.json()["text"]
    slack.fake.wait_for_call("chat.postMessage", "Stop now")
    [row] = wait_audit(store, 1)
    assert (row.verb, row.outcome, row.service) == ("fault", "ok", "payload-api")
    only_experiment_id(store)


def test_a_refusal_that_mentions_payload_is_one_line_and_audited(slack: SlackClient, store: Store) -> None:
    sent = slack.command(f"fault delay 3s payload-api.{NS}")
    assert sent.response.status_code == 200
    said = slack.fake.wait_for_call("response_url", "payload-api")[0]
    assert f"there is no service payload-api in namespace {NS}" in said.all_text().lower()
    [row] = wait_audit(store, 1)
    assert row.outcome == "refused"


def test_a_forged_body_that_mentions_payload_is_still_refused(slack: SlackClient, store: Store) -> None:
    body = urlencode(
        {
            "team_id": TEAM_ID,
            "channel_id": CHANNEL,
            "user_id": "U0OPS",
            "command": "/mesh",
            "text": "status payload",
            "response_url": slack.fake.response_url("t-forged"),
            "trigger_id": "t-forged",
        }
    )
    forged = sign(body, secret="not-the-signing-secret")
    response = slack.post(body, "application/x-www-form-urlencoded", headers=forged)
    assert response.status_code == 401
    assert audit_rows(store) == []
