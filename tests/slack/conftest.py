"""The Slack front wired to a playground cluster, a migrated SQLite store and a fake Slack.

``slack_app`` builds ``create_app()`` for a test, ``slack`` enters it as ``with TestClient(app)``
(so the lifespan runs, and the work after each ack) and sends requests signed exactly as Slack
signs them.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from bot.app import create_app
from bot.pipeline import Pipeline
from core.policy import Policy
from core.settings import Settings
from core.store import Store
from mesh.kube import for_url
from playground.runner import Playground

from .fake_slack import TEAM_ID, FakeSlack

SIGNING_SECRET = "0123456789abcdef0123456789abcdef"
BOT_TOKEN = "xoxb-1-test"
API_TOKEN = "api-token-0123456789abcdef"
CHANNEL = "C0CHAOS"

ROLES: dict[str, Any] = {
    "admin": {"users": ["U0ADMIN"], "groups": ["S0SRE"]},
    "operator": {"users": ["U0OPS"], "groups": ["S0DEV"], "namespaces": ["emojivoto-istio"]},
    "viewer": {"users": ["*"]},
}

_triggers = itertools.count(1)


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    fake.usergroups = {"S0SRE": ["U0SRE1"], "S0DEV": ["U0DEV1"]}
    yield fake
    fake.stop()


def settings_for(fake: FakeSlack, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": fake.api_url,
        "api_token": API_TOKEN,
        **overrides,
    }
    return Settings(**values)


@dataclass
class SlackApp:
    app: FastAPI
    pipeline: Pipeline
    fake: FakeSlack
    store: Store


@pytest.fixture
def make_slack_app(playground: Playground, store: Store, fake_slack: FakeSlack) -> Callable[..., SlackApp]:
    def make(policy: dict[str, Any] | None = None, **settings: Any) -> SlackApp:
        chosen = Policy.model_validate({"roles": ROLES} if policy is None else policy)
        pipeline = Pipeline(store=store, kube=for_url(playground.url), policy=chosen)
        app = create_app(settings_for(fake_slack, **settings), pipeline=pipeline)
        return SlackApp(app, pipeline, fake_slack, store)

    return make


@pytest.fixture
def slack_app(make_slack_app: Callable[..., SlackApp]) -> SlackApp:
    return make_slack_app()


def sign(body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """The two headers Slack adds: v0=HMAC_SHA256(secret, "v0:{ts}:{body}")."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


@dataclass
class Sent:
    response: Response
    acked_at: float
    elapsed: float
    trigger_id: str
    response_url: str


@dataclass
class SlackClient:
    """Sends what Slack would send, signed, to the app under a TestClient."""

    http: TestClient
    fake: FakeSlack
    sent: list[Sent] = field(default_factory=list)

    def post(self, body: str, content_type: str, headers: dict[str, str] | None = None) -> Response:
        all_headers = {"Content-Type": content_type, **sign(body), **(headers or {})}
        return self.http.post("/slack/events", content=body, headers=all_headers)

    def command(
        self,
        text: str,
        *,
        user: str = "U0OPS",
        channel: str = CHANNEL,
        team: str = TEAM_ID,
        trigger_id: str | None = None,
        headers: dict[str, str] | None = None,
        user_name: str | None = None,
    ) -> Sent:
        trigger = trigger_id or f"trigger-{next(_triggers)}"
        response_url = self.fake.response_url(trigger)
        body = urlencode(
            {
                "token": "legacy-verification-token",
                "team_id": team,
                "team_domain": "test",
                "channel_id": channel,
                "channel_name": "chaos",
                "user_id": user,
                "user_name": user_name or user.lower().removeprefix("u0"),
                "command": "/mesh",
                "text": text,
                "api_app_id": "A0MESH",
                "response_url": response_url,
                "trigger_id": trigger,
            }
        )
        started = time.monotonic()
        response = self.post(body, "application/x-www-form-urlencoded", headers)
        acked = time.monotonic()
        sent = Sent(response, acked, acked - started, trigger, response_url)
        self.sent.append(sent)
        return sent

    def press(
        self,
        action_id: str,
        value: str,
        *,
        user: str = "U0OPS",
        channel: str = CHANNEL,
        message_ts: str = "1700000000.000001",
        ephemeral: bool = False,
    ) -> Sent:
        trigger = f"trigger-{next(_triggers)}"
        response_url = self.fake.response_url(f"action-{trigger}")
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM_ID, "domain": "test"},
            "user": {"id": user, "username": user.lower().removeprefix("u0"), "team_id": TEAM_ID},
            "api_app_id": "A0MESH",
            "token": "legacy-verification-token",
            "container": {
                "type": "ephemeral_message" if ephemeral else "message",
                "message_ts": message_ts,
                "channel_id": channel,
                "is_ephemeral": ephemeral,
            },
            "trigger_id": trigger,
            "channel": {"id": channel, "name": "chaos"},
            "message": {"type": "message", "ts": message_ts, "text": ""},
            "response_url": response_url,
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "b",
                    "value": value,
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        body = urlencode({"payload": json.dumps(payload)})
        started = time.monotonic()
        response = self.post(body, "application/x-www-form-urlencoded")
        acked = time.monotonic()
        return Sent(response, acked, acked - started, trigger, response_url)


@pytest.fixture
def slack(slack_app: SlackApp) -> Iterator[SlackClient]:
    with TestClient(slack_app.app) as http:
        yield SlackClient(http, slack_app.fake)


def buttons(call_blocks: list[dict[str, Any]]) -> dict[str, str]:
    """action_id → value of every button in some blocks."""
    return {
        element["action_id"]: element["value"]
        for block in call_blocks
        if block.get("type") == "actions"
        for element in block["elements"]
    }


def audit_rows(store: Store) -> list[Any]:
    """Every audit event, oldest first."""
    from core.store import AuditQuery, query_events

    with store.read() as session:
        return list(reversed(query_events(session=session, query=AuditQuery(limit=500)).events))


def wait_audit(store: Store, count: int, timeout: float = 10.0) -> list[Any]:
    """Wait until the audit log holds ``count`` events (the pipeline writes them before replying)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = audit_rows(store)
        if len(rows) >= count:
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(
                f"expected {count} audit events, found {[(r.verb, r.outcome) for r in rows]}"
            )
        time.sleep(0.02)


def experiment(store: Store, experiment_id: str) -> Any:
    from core.store import get_experiment

    with store.read() as session:
        return get_experiment(session=session, experiment_id=experiment_id)


def only_experiment_id(store: Store) -> str:
    from core.store import list_active

    with store.read() as session:
        active = list_active(session=session)
    assert len(active) == 1, [e.id for e in active]
    return active[0].id
