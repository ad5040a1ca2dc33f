"""Odd input through POST /api/v1/commands: a 4xx and a refusal in the audit log, never a 500."""

from __future__ import annotations

import pytest

from .conftest import API_TOKEN, SlackApp, SlackClient, audit_rows

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
NS = "emojivoto-istio"


@pytest.mark.parametrize(
    "command",
    [
        f"fault abort ⁵⁰⁰ web-svc.{NS}",
        f"fault abort 500 web-svc.{NS} ５０%",
        f"fault abort 500 web-svc.{NS} for 9999999999d",
        "fault extend exp-1a2b 9999999999d",
        f"audit before={2**63}",
        "audit since=99999999d",
        "audit limit=²",
        f'schedule "fault abort 500 web-svc.{NS} for 5m" at +1h remind=99999999d',
        f'schedule "fault abort 500 web-svc.{NS} for 5m" at +99999999d',
        'fault abort 500 "web-svc\n" -n emojivoto-istio',
        'fault abort 500 web-svc -n "kube-system\n"',
        f'fault abort 500 web-svc.{NS} "header=x-user:alice\nx-admin: 1"',
    ],
)
def test_odd_commands_are_refused_with_a_4xx(slack: SlackClient, slack_app: SlackApp, command: str) -> None:
    response = slack.http.post(
        "/api/v1/commands", headers=AUTH, json={"command": command, "channel": "C-chaos", "confirmed": True}
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["outcome"] == "refused"
    (row,) = audit_rows(slack_app.store)
    assert (row.command, row.outcome, row.source) == (command, "refused", "api")


def test_an_actor_with_a_trailing_newline_is_refused(slack: SlackClient) -> None:
    response = slack.http.post(
        "/api/v1/commands", headers=AUTH, json={"command": "fault list", "actor": "alice\n"}
    )
    assert response.status_code == 422
