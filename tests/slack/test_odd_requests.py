"""Odd requests to /slack/events: a 400 or 401 with one line, a counted refusal, nothing run.

Bolt parses a body before it checks the signature and reads the timestamp with int(); before the
gate (bot/slack/gate.py) each of these was a 500 with a traceback.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from .conftest import CHANNEL, SlackApp, audit_rows, sign
from .fake_slack import TEAM_ID

FORM = "application/x-www-form-urlencoded"


def command(**fields: str) -> str:
    values = {
        "team_id": TEAM_ID,
        "channel_id": CHANNEL,
        "user_id": "U0OPS",
        "command": "/mesh",
        "text": "fault delay 3s web-svc.emojivoto-istio",
        "response_url": "http://127.0.0.1:9/secret-response-url",
        "trigger_id": "t-odd",
        **fields,
    }
    return urlencode({k: v for k, v in values.items() if v != "-"})


def press(**changes: Any) -> str:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": TEAM_ID},
        "user": {"id": "U0OPS", "team_id": TEAM_ID},
        "channel": {"id": CHANNEL},
        "trigger_id": "t-odd-press",
        "response_url": "http://127.0.0.1:9/secret-response-url",
        "actions": [{"action_id": "meshbot_stop", "value": "exp-1", "type": "button"}],
        **changes,
    }
    return urlencode({"payload": json.dumps({k: v for k, v in payload.items() if v != "-"})})


def post(app: SlackApp, body: str | bytes, headers: Mapping[str, str | bytes]) -> tuple[int, str, str]:
    """Status, body and /metrics after one request, with the app drained."""
    with TestClient(app.app, raise_server_exceptions=False) as http:
        response = http.post("/slack/events", content=body, headers=headers)
        metrics = http.get("/metrics").text
    return response.status_code, response.text, metrics


def signed(body: str | bytes, content_type: str = FORM) -> dict[str, str]:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    headers = {"Content-Type": content_type, **sign(text)}
    if isinstance(body, bytes):
        # sign() works on text; a non-UTF-8 body is signed over its bytes, as Slack would.
        import hashlib
        import hmac

        from .conftest import SIGNING_SECRET

        ts = headers["X-Slack-Request-Timestamp"]
        digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
        headers["X-Slack-Signature"] = f"v0={digest}"
    return headers


def assert_nothing_ran(app: SlackApp) -> None:
    assert audit_rows(app.store) == []
    # Not even auth.test: the request never reached Bolt.
    assert app.fake.calls == []


@pytest.mark.parametrize("timestamp", ["abc", "", " 1700000000", "1_700_000_000", "١٧٠٠٠٠٠٠٠٠", "-1", "1e9"])
def test_a_timestamp_that_is_not_ascii_digits_is_401_even_unsigned(
    slack_app: SlackApp, timestamp: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = command()
    headers = {"Content-Type": FORM, "X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": "v0=00"}
    # httpx sends str headers as ASCII only; bytes go as they are.
    status, text, metrics = post(slack_app, body.encode(), {k: v.encode() for k, v in headers.items()})
    assert (status, text) == (401, "timestamp check failed")
    assert 'meshbot_slack_requests_rejected_total{reason="timestamp"} 1.0' in metrics
    assert_nothing_ran(slack_app)
    assert [r.getMessage() for r in caplog.records if "refused" in r.getMessage()] == [
        "refused a Slack request from testclient: timestamp check failed"
    ]


MALFORMED: list[Any] = [
    pytest.param(urlencode({"payload": "{not json"}), FORM, "payload is not JSON", id="payload-not-json"),
    pytest.param(urlencode({"payload": "[1, 2]"}), FORM, "payload is not a JSON object", id="payload-list"),
    pytest.param(press(actions=[]), FORM, "block_actions without actions", id="no-actions"),
    pytest.param(press(actions="-"), FORM, "block_actions without actions", id="actions-missing"),
    pytest.param(press(actions=[{"value": "x"}]), FORM, "without action_id", id="action-without-id"),
    pytest.param(press(user="-"), FORM, "block_actions without user.id", id="press-without-user"),
    pytest.param(press(user={"name": "x"}), FORM, "block_actions without user.id", id="press-user-no-id"),
    pytest.param(press(channel="C0"), FORM, "not an object", id="press-channel-string"),
    pytest.param(command(user_id="-"), FORM, "a slash command without user_id", id="command-no-user"),
    pytest.param(command(user_id=""), FORM, "a slash command without user_id", id="command-empty-user"),
    pytest.param("{broken", "application/json", "the body is not JSON", id="event-not-json"),
    pytest.param("[]", "application/json", "the body is not a JSON object", id="event-list"),
    pytest.param("", FORM, "the body is empty", id="empty"),
    pytest.param(b"text=\xff\xfe", FORM, "the body is not UTF-8", id="not-utf8"),
]


@pytest.mark.parametrize(("body", "content_type", "detail"), MALFORMED)
def test_a_signed_body_bolt_cannot_read_is_400_with_one_line(
    slack_app: SlackApp,
    body: str | bytes,
    content_type: str,
    detail: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):
        status, text, metrics = post(slack_app, body, signed(body, content_type))
    assert status == 400
    assert detail in text and "\n" not in text
    assert 'meshbot_slack_requests_rejected_total{reason="malformed"} 1.0' in metrics
    assert_nothing_ran(slack_app)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"refused a Slack request from testclient: {text}" in logged
    assert "secret-response-url" not in logged and "Traceback" not in caplog.text


def test_an_unsigned_malformed_body_is_a_signature_refusal(slack_app: SlackApp) -> None:
    # A stranger learns nothing about what meshbot can parse.
    body = urlencode({"payload": "{not json"})
    status, _, metrics = post(slack_app, body, {"Content-Type": FORM})
    assert status == 401
    assert 'meshbot_slack_requests_rejected_total{reason="signature"} 1.0' in metrics
    assert_nothing_ran(slack_app)


def test_whatever_bolt_raises_is_one_line_and_a_400_never_a_traceback(
    slack_app: SlackApp, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    body = command()
    with TestClient(slack_app.app, raise_server_exceptions=False) as http:

        async def crash(request: object) -> object:
            raise KeyError("user_id")

        monkeypatch.setattr(slack_app.app.state.parts.slack_handler, "handle", crash)
        response = http.post("/slack/events", content=body, headers=signed(body))
        metrics = http.get("/metrics").text
    assert (response.status_code, response.text) == (400, "Bolt raised KeyError")
    assert 'meshbot_slack_requests_rejected_total{reason="error"} 1.0' in metrics
    assert audit_rows(slack_app.store) == []
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in errors] == [
        "refused a Slack request from testclient: Bolt raised KeyError"
    ]
    assert all(r.exc_info is None for r in errors)


def test_a_signature_header_that_is_not_ascii_is_a_signature_refusal(slack_app: SlackApp) -> None:
    body = command()
    headers = {**signed(body), "X-Slack-Signature": "v0=é"}
    status, _, metrics = post(slack_app, body, {k: v.encode() for k, v in headers.items()})
    assert status == 401
    assert 'meshbot_slack_requests_rejected_total{reason="signature"} 1.0' in metrics
    assert_nothing_ran(slack_app)


def test_slacks_ssl_check_still_answers_200(slack_app: SlackApp) -> None:
    status, _, _ = post(slack_app, urlencode({"ssl_check": "1", "token": "x"}), {"Content-Type": FORM})
    assert status == 200


def test_a_good_request_still_runs(make_slack_app: Callable[..., SlackApp]) -> None:
    app = make_slack_app()
    body = command(text="fault list")
    with TestClient(app.app) as http:
        response = http.post("/slack/events", content=body, headers=signed(body))
        assert response.status_code == 200
        deadline = time.monotonic() + 10
        while not audit_rows(app.store) and time.monotonic() < deadline:
            time.sleep(0.02)
    assert [r.outcome for r in audit_rows(app.store)] == ["ok"]
