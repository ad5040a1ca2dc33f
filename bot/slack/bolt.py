"""Assembling the Bolt app: Bolt's own chain (signature check, auth.test), ours, the listeners."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import Metrics
from bot.slack import listeners
from bot.slack.front import SlackFront
from bot.slack.middleware import Deduplicate, RequestLog


class _TokenFromClient(logging.Filter):
    """Drops Bolt's start-up warning that the token "will be unused": Bolt reads SLACK_BOT_TOKEN
    from the environment by itself, and the client it is given was built from that same token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


BOLT_LOGGER = logging.getLogger("bot.slack.bolt")
BOLT_LOGGER.addFilter(_TokenFromClient())


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
        # Bolt answers when a listener returns; ours ack and leave the work to a task
        # (bot.slack.listeners). The other mode polls for the ack every 10 ms.
        process_before_response=True,
        logger=BOLT_LOGGER,
        name="meshbot",
    )
    app.use(RequestLog())
    app.use(Deduplicate(front.deliveries))
    listeners.register(app, front)
    return app
