"""The loose ends the hand-made attack noted, each closed and held here."""

from __future__ import annotations

from typing import Any

from core.store import Actor, Source, get_binding, list_schedules
from core.store.audit import TEXT_KEPT
from tests.resilience.conftest import assert_chain_intact
from tests.resilience.figures import attempt
from tests.slack.conftest import API_TOKEN, CHANNEL, ROLES, SlackApp, SlackClient, wait_audit

NS = "emojivoto-istio"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def test_the_api_describes_itself_to_no_one(slack: SlackClient) -> None:
    for path in ("/api/docs", "/api/openapi.json", "/redoc", "/docs", "/openapi.json"):
        with attempt("loose ends"):
            for headers in ({}, AUTH):
                response = slack.http.get(path, headers=headers)
                assert response.status_code == 404, (path, response.status_code)
                assert "/api/v1/commands" not in response.text


TWO_TEAMS: dict[str, Any] = {
    "roles": {
        **ROLES,
        "operator": [
            {"users": ["U0OPS"], "namespaces": [NS]},
            {"users": ["U0OTHER"], "namespaces": ["default"]},
        ],
    }
}


def _binding(app: SlackApp) -> str | None:
    with app.store.read() as session:
        binding = get_binding(session=session, channel=CHANNEL)
    return binding.namespace if binding is not None else None


def test_an_operator_cannot_take_another_teams_channel(make_slack_app: Any) -> None:
    from fastapi.testclient import TestClient

    app = make_slack_app(TWO_TEAMS)
    with TestClient(app.app) as http:
        slack = SlackClient(http, app.fake)
        with attempt("loose ends"):
            slack.command(f"use {NS}", user="U0OPS")
            assert wait_audit(app.store, 1)[-1].outcome == "ok"
            assert _binding(app) == NS
        with attempt("loose ends"):
            # The other team's operator may use `default`, but not take a channel bound to emojivoto.
            slack.command("use default", user="U0OTHER")
            row = wait_audit(app.store, 2)[-1]
            assert (row.outcome, row.actor_user_id) == ("denied", "U0OTHER"), row.message
            assert f"bound to {NS}" in row.message
            assert _binding(app) == NS
        with attempt("loose ends"):
            # Unbound channels are anyone's with the role for the namespace named.
            slack.command("use default", user="U0OTHER", channel="C0OTHER")
            assert wait_audit(app.store, 3)[-1].outcome == "ok"
        with attempt("loose ends"):
            # An admin answers for every namespace, so may move any channel.
            slack.command("use default", user="U0ADMIN")
            assert wait_audit(app.store, 4)[-1].outcome == "ok"
            assert _binding(app) == "default"
        assert_chain_intact(app.store)


def test_a_cron_that_never_fires_is_refused_when_made(slack_app: SlackApp) -> None:
    ops = Actor(user_id="U0OPS", team_id="T0TEST")
    for cron in ("0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"):
        with attempt("loose ends"):
            text = f'schedule "fault abort 500 web-svc.{NS} for 5m" every "{cron}"'
            reply = slack_app.pipeline.run(text, actor=ops, source=Source.SLACK, channel=CHANNEL)
            assert reply.outcome == "refused", reply.text
            assert "no date ever matches it" in reply.text
            with slack_app.store.read() as session:
                assert list_schedules(session=session) == []
    with attempt("loose ends"):
        text = f'schedule "fault abort 500 web-svc.{NS} for 5m" every "0 0 29 2 *"'
        reply = slack_app.pipeline.run(text, actor=ops, source=Source.SLACK, channel=CHANNEL)
        assert reply.outcome == "ok", reply.text


def test_a_huge_command_is_kept_in_part_and_says_so(slack: SlackClient, slack_app: SlackApp) -> None:
    for count, size in enumerate((6_000, 1_000_000), start=1):
        with attempt("loose ends"):
            command = f"fault abort 500 web-svc.{NS} " + "z" * size
            sent = slack.command(command)
            assert sent.response.status_code == 200
            assert len(sent.response.content) < 10_000
            row = wait_audit(slack_app.store, count)[-1]
            assert row.outcome == "refused"
            assert row.command.startswith(command[:TEXT_KEPT])
            assert f"[cut: {len(command)} characters, first {TEXT_KEPT} kept]" in row.command
            assert len(row.command) < TEXT_KEPT + 100
    assert assert_chain_intact(slack_app.store) == 2


def test_the_api_refuses_a_huge_command_without_echoing_it(slack: SlackClient) -> None:
    with attempt("loose ends"):
        command = "fault abort 500 web-svc " + "z" * 1_000_000
        response = slack.http.post("/api/v1/commands", headers=AUTH, json={"command": command})
        assert response.status_code == 422
        assert len(response.content) < 2_000, len(response.content)
        assert "at most 2000 characters" in response.text
