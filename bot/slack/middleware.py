"""Cross-cutting Bolt middleware: one log line per request, and Slack's retries run once.

Both come after Bolt's own signature check, so a forged request can neither fill the log with
its claims nor mark a real request as already seen.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.metrics import Metrics

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
    running it again; keys are kept for ``ttl`` seconds, at most ``max_keys`` of them.

    Bolt's global middleware runs before the listeners rather than around them, so a key is
    claimed when a delivery first passes here. Deliveries refused earlier (bad signature, failed
    auth.test) never reach this point, so their retries still run.
    """

    def __init__(self, metrics: Metrics, *, ttl_seconds: float = 3600, max_keys: int = 10_000) -> None:
        self._metrics = metrics
        self._ttl = ttl_seconds
        self._max = max_keys
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    async def async_process(self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Next) -> BoltResponse:
        key = request_key(req)
        if not self._claim(key):
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
        now = time.monotonic()
        with self._lock:
            while self._seen and (
                len(self._seen) >= self._max or next(iter(self._seen.values())) < now - self._ttl
            ):
                self._seen.popitem(last=False)
            if key in self._seen:
                return False
            self._seen[key] = now
            return True


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
