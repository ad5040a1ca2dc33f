"""Cross-cutting Bolt middleware: one log line per request, and Slack's retries run once, on
whichever replica they land.

Both come after Bolt's own signature check, so a forged request can neither fill the log with
its claims nor mark a real request as already seen.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from sqlalchemy.exc import SQLAlchemyError

from bot.metrics import Metrics
from core.clock import utcnow
from core.store import Store, StoreError, claim_request_key

log = logging.getLogger(__name__)

# Typed as Bolt declares it; in Bolt 1.x it only marks "go on" and returns nothing useful.
Next = Callable[[], Awaitable[BoltResponse]]


def request_key(req: AsyncBoltRequest) -> str:
    """What identifies one delivery across Slack's retries: the event id for events, the trigger
    id for commands and button presses, else the body itself."""
    body: dict[str, Any] = req.body if isinstance(req.body, dict) else {}
    team = req.context.team_id or ""
    for field in ("event_id", "trigger_id"):
        if body.get(field):
            return f"{team}:{field}:{body[field]}"
    return "body:" + hashlib.sha256(req.raw_body.encode()).hexdigest()


class Deduplicate(AsyncMiddleware):
    """Acknowledge a repeated delivery (X-Slack-Retry-Num, or the same trigger twice) without
    running it again; keys are kept for ``ttl_seconds``.

    The keys live in the store, so a retry that lands on another replica than the first delivery
    is caught too. Bolt's global middleware runs before the listeners rather than around them, so
    a key is claimed when a delivery first passes here. Deliveries refused earlier (bad signature,
    failed auth.test) never reach this point, so their retries still run.
    """

    def __init__(
        self,
        metrics: Metrics,
        store: Store,
        *,
        ttl_seconds: float = 3600,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._metrics = metrics
        self._store = store
        self._ttl = timedelta(seconds=ttl_seconds)
        self._clock = clock

    async def async_process(self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Next) -> BoltResponse:
        key = request_key(req)
        try:
            first = await asyncio.to_thread(self._claim, key)
        except (StoreError, SQLAlchemyError) as exc:
            # Without the shared record a retry could run twice; refuse instead, and Slack
            # retries events later or shows the person the command failed, so they can resend.
            log.error("cannot record a Slack delivery as seen, refusing it: %s", exc.__class__.__name__)
            return BoltResponse(status=503, body="")
        if not first:
            log.info(
                "ignoring a repeated Slack delivery (retry %s, reason %s)",
                req.headers.get("x-slack-retry-num", ["-"])[0],
                req.headers.get("x-slack-retry-reason", ["-"])[0],
            )
            self._metrics.slack_duplicates.inc()
            # Not calling next() ends the chain: this response is the ack.
            return BoltResponse(status=200, body="")
        await next()
        return resp

    def _claim(self, key: str) -> bool:
        with self._store.write() as session:
            return claim_request_key(session=session, key=key, now=self._clock(), ttl=self._ttl)


class RequestLog(AsyncMiddleware):
    """One line per request that passed the signature check: what, who (ids only), where."""

    async def async_process(self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Next) -> BoltResponse:
        body: dict[str, Any] = req.body if isinstance(req.body, dict) else {}
        what = body.get("command") or body.get("type") or "request"
        if body.get("type") == "block_actions":
            what = ",".join(str(a.get("action_id")) for a in body.get("actions", []))
        retry = req.headers.get("x-slack-retry-num", [None])[0]
        log.info(
            "slack %s team=%s user=%s channel=%s%s",
            what,
            req.context.team_id,
            req.context.user_id,
            req.context.channel_id,
            f" retry={retry}" if retry else "",
        )
        await next()
        return resp
