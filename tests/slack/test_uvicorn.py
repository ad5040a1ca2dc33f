"""The app under a real uvicorn on 127.0.0.1, as `meshbot serve` runs it: lifespan, ack, follow-up."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import httpx
import uvicorn
from fastapi import FastAPI

from playground.runner import Playground

from .conftest import CHANNEL, SlackApp, sign, wait_audit
from .fake_slack import TEAM_ID


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_signed_command_through_a_real_server(slack_app: SlackApp, playground: Playground) -> None:
    playground.hooks.latency_seconds = 0.05  # a cluster slower than the ack
    body = urlencode(
        {
            "team_id": TEAM_ID,
            "channel_id": CHANNEL,
            "user_id": "U0OPS",
            "user_name": "ops",
            "command": "/mesh",
            "text": "fault delay 3s web-svc.emojivoto-istio",
            "response_url": slack_app.fake.response_url("uvicorn"),
            "trigger_id": "t-uvicorn",
        }
    )
    with serving(slack_app.app) as url, httpx.Client(base_url=url, trust_env=False) as http:
        assert http.get("/readyz").json() == {"ready": True}
        started = time.monotonic()
        ack = http.post(
            "/slack/events",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", **sign(body)},
        )
        acked = time.monotonic()
        assert ack.status_code == 200 and ack.json()["response_type"] == "ephemeral"
        parent = slack_app.fake.wait_for_call("chat.postMessage", "Stop now")[0]
        assert acked < parent.at
        print(
            f"\nack latency under uvicorn: {(acked - started) * 1000:.1f} ms (first request, with auth.test)"
        )
    (row,) = wait_audit(slack_app.store, 1)
    assert row.outcome == "ok"
