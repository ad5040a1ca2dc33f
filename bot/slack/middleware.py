"""Cross-cutting Bolt middleware: one log line per request, and Slack's retries run once, on
whichever replica they land.

Both come after Bolt's own signature check, so a forged request can neither fill the log with
its claims nor mark a real request as already seen.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.metrics import Metrics
from core.clock import utcnow
from core.store import Store, claim_request_key

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


# Where Deduplicate leaves a delivery's key for the listener, which claims it after the ack.
DELIVERY_KEY = "meshbot_delivery_key"
# Deliveries remembered in this process, so a repeat here is answered without touching the store.
RECENT_DELIVERIES = 10_000


class Deliveries:
    """Which deliveries ran already: Slack's retries run once, on whichever replica they land.

    The keys live in the store, so a retry that lands on another replica than the first delivery
    is caught too; each is kept for ``ttl_seconds``. Claiming is a write that may wait for the
    database, so it happens after the ack, in the front's store lane, and before any work: the
    acknowledgement itself never waits for SQL (Slack gives up after 3 s, and then retries).
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
        self._recent: OrderedDict[str, None] = OrderedDict()

    def seen_here(self, key: str) -> bool:
        """Whether this process saw the key already; remembers it. Event loop only, no I/O."""
        if key in self._recent:
            return True
        self._recent[key] = None
        if len(self._recent) > RECENT_DELIVERIES:
            self._recent.popitem(last=False)
        return False

    def repeated(self, req_headers: dict[str, Any]) -> None:
        log.info(
            "ignoring a repeated Slack delivery (retry %s, reason %s)",
            req_headers.get("x-slack-retry-num", ["-"])[0],
            req_headers.get("x-slack-retry-reason", ["-"])[0],
        )
        self._metrics.slack_duplicates.inc()

    def claim(self, key: str) -> bool:
        """True for the first delivery of ``key`` on any replica. Blocking: run it in a thread."""
        with self._store.write() as session:
            first = claim_request_key(session=session, key=key, now=self._clock(), ttl=self._ttl)
        if not first:
            log.info("ignoring a Slack delivery another replica (or an earlier run) claimed")
            self._metrics.slack_duplicates.inc()
        return first


class Deduplicate(AsyncMiddleware):
    """A repeated delivery (X-Slack-Retry-Num, or the same trigger twice) seen by this process is
    acknowledged without running again; any other gets its key in the context, for the listener to
    claim in the store after the ack (``SlackFront.first_delivery``).

    Bolt's global middleware runs before the listeners rather than around them. Deliveries refused
    earlier (bad signature, failed auth.test) never reach this point, so their retries still run.
    """

    def __init__(self, deliveries: Deliveries) -> None:
        self._deliveries = deliveries

    async def async_process(self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Next) -> BoltResponse:
        key = request_key(req)
        if self._deliveries.seen_here(key):
            self._deliveries.repeated(dict(req.headers))
            # Not calling next() ends the chain: this response is the ack.
            return BoltResponse(status=200, body="")
        req.context[DELIVERY_KEY] = key
        await next()
        return resp


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
