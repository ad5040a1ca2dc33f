"""Assembling the Bolt app: Bolt's own chain (signature check, auth.test), ours, the listeners."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import Metrics
from bot.slack import listeners
from bot.slack.front import SlackFront
from bot.slack.middleware import Deduplicate, RequestLog


def build_bolt_app(
    *,
    client: AsyncWebClient,
    signing_secret: str | None,
    front: SlackFront,
    metrics: Metrics,
) -> AsyncApp:
    """``signing_secret`` None means Socket Mode: requests come over the app's own websocket,
    and the HTTP route is not mounted, so nothing unsigned can reach the listeners."""
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret or "",
        request_verification_enabled=signing_secret is not None,
        # A long-running server: ack first, work after.
        process_before_response=False,
        logger=logging.getLogger("bot.slack.bolt"),
        name="meshbot",
    )
    app.use(RequestLog())
    app.use(Deduplicate(front.deliveries))
    listeners.register(app, front)
    return app
