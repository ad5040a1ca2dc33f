"""Socket Mode: the same listeners, fed over a websocket the app opens; no HTTP route for Slack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.pipeline import Pipeline
from core.policy import Policy
from core.store import Store
from mesh.kube import for_url
from playground.runner import Playground

from .conftest import CHANNEL, ROLES, settings_for, wait_audit
from .fake_slack import TEAM_ID, FakeSlack, FakeSocketMode


@pytest.fixture
def socket_server(fake_slack: FakeSlack) -> Iterator[FakeSocketMode]:
    server = FakeSocketMode().start()
    fake_slack.socket_url = server.url
    yield server
    server.stop()


def test_a_slash_command_over_socket_mode(
    playground: Playground, store: Store, fake_slack: FakeSlack, socket_server: FakeSocketMode
) -> None:
    pipeline = Pipeline(
        store=store, kube=for_url(playground.url), policy=Policy.model_validate({"roles": ROLES})
    )
    settings = settings_for(fake_slack, slack_app_token="xapp-1-test", slack_signing_secret=None)
    with TestClient(create_app(settings, pipeline=pipeline, socket_mode=True)) as http:
        assert socket_server.connected.wait(5)
        (opened,) = fake_slack.calls_to("apps.connections.open")
        assert opened.headers["Authorization"] == "Bearer xapp-1-test"
        socket_server.send(
            {
                "envelope_id": "env-1",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": {
                    "team_id": TEAM_ID,
                    "channel_id": CHANNEL,
                    "user_id": "U0VIEW",
                    "user_name": "view",
                    "command": "/mesh",
                    "text": "fault list",
                    "api_app_id": "A0MESH",
                    "response_url": fake_slack.response_url("socket"),
                    "trigger_id": "t-socket",
                },
            }
        )
        ack = socket_server.wait_for_ack("env-1")
        assert ack["payload"]["text"].startswith(":hourglass_flowing_sand: Working on `/mesh fault list`")
        # Looking answers the person alone (no --share).
        assert "No active faults." in fake_slack.wait_for_call("response_url", "No active faults")[0].text
        (row,) = wait_audit(store, 1)
        assert (row.actor_user_id, row.source, row.outcome) == ("U0VIEW", "slack", "ok")
        # Nothing unsigned may come in over HTTP while the websocket carries Slack's requests.
        assert http.post("/slack/events", content="command=%2Fmesh").status_code == 404
