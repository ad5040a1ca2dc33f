"""Slack Web API clients with bounded retries: what Slack says failed is tried again, nothing else.

- 429: Retry-After is honoured, within limits. slack_sdk's own handler sleeps whatever it says,
  plus up to a second of jitter; a command's follow-up waiting minutes on one channel would hold
  its worker for that long, so ours gives up on waits above ``MAX_WAIT_SECONDS``.
- 500, 502, 503: Slack says the call failed; tried again after ``BACKOFF_SECONDS``, doubling.
  A 504 is not: the gateway stopped waiting, and the message may well have been posted.
- Network errors: a connection that was never made is tried again like a 5xx. One that broke
  after the request went out (disconnect, reset, timeout) only for calls that are safe to repeat
  (reads and chat.update): a chat.postMessage Slack did receive would otherwise appear twice.

Whatever still fails after ``MAX_RETRIES`` is the caller's to log and count
(``meshbot_slack_api_failures_total``); the command's result is in the store either way.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from http.client import RemoteDisconnected
from urllib.error import URLError
from urllib.parse import urlsplit

from aiohttp import ClientConnectionError, ClientConnectorError
from slack_sdk import WebClient
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

log = logging.getLogger(__name__)

MAX_RETRIES = 3
MAX_WAIT_SECONDS = 30.0
TIMEOUT_SECONDS = 15
# The first wait after a 5xx or a refused connection; each retry waits twice the one before.
BACKOFF_SECONDS = 1.0
FAILED_STATUSES = frozenset({500, 502, 503})
# Sending these twice changes nothing (chat.update draws the same message again).
REPEATABLE_METHODS = frozenset(
    {"auth.test", "chat.update", "usergroups.users.list", "users.info", "apps.connections.open"}
)


def _retry_after(response: HttpResponse | None, *, status: int = 429) -> float | None:
    """The wait Slack asks for, or None when this is not a 429 we are willing to wait out."""
    if response is None or response.status_code != status:
        return None
    if status != 429 and not any(k.lower() == "retry-after" for k in response.headers):
        return None
    values: list[str] = next((list(v) for k, v in response.headers.items() if k.lower() == "retry-after"), [])
    try:
        wait = float(values[0]) if values else 1.0
    except ValueError:
        wait = 1.0
    return wait if 0 <= wait <= MAX_WAIT_SECONDS else None


def _repeatable(request: HttpRequest) -> bool:
    return urlsplit(request.url).path.rsplit("/", 1)[-1] in REPEATABLE_METHODS


def _not_sent(error: Exception) -> bool:
    """The request never left: no connection was made (refused, DNS, TLS handshake)."""
    if isinstance(error, ClientConnectorError):
        return True
    reason = getattr(error, "reason", None)  # urllib wraps the socket error in URLError
    return isinstance(error, URLError) and isinstance(reason, ConnectionRefusedError | socket.gaierror)


def _broken_after_sending(error: Exception) -> bool:
    return isinstance(
        error, ClientConnectionError | URLError | ConnectionError | RemoteDisconnected | TimeoutError
    )


def _worth_retrying(request: HttpRequest, response: HttpResponse | None, error: Exception | None) -> bool:
    if response is not None:
        return response.status_code in FAILED_STATUSES
    if error is None:
        return False
    return _not_sent(error) or (_repeatable(request) and _broken_after_sending(error))


def _backoff(state: RetryState, response: HttpResponse | None) -> float:
    # A 503 may say when to come back; the bound is the same as for a 429.
    asked = _retry_after(response, status=response.status_code if response is not None else 429)
    wait = asked if asked is not None else BACKOFF_SECONDS * 2**state.current_attempt
    return min(wait, MAX_WAIT_SECONDS) + random.uniform(0, BACKOFF_SECONDS / 4)


class FailureRetry(AsyncRetryHandler):
    """5xx and network errors, as the module says; shares the attempt count with the 429 handler."""

    def __init__(self, max_retry_count: int = MAX_RETRIES) -> None:
        super().__init__(max_retry_count=max_retry_count)

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        retry = _worth_retrying(request, response, error)
        if retry:
            log.info("Slack %s, trying again: %s", _what_failed(response, error), _shown(request))
        return retry

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        await asyncio.sleep(_backoff(state, response))
        state.increment_current_attempt()


class SyncFailureRetry(RetryHandler):
    def __init__(self, max_retry_count: int = MAX_RETRIES) -> None:
        super().__init__(max_retry_count=max_retry_count)

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return _worth_retrying(request, response, error)

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        time.sleep(_backoff(state, response))
        state.increment_current_attempt()


def _what_failed(response: HttpResponse | None, error: Exception | None) -> str:
    return (
        f"answered {response.status_code}" if response is not None else f"failed ({error.__class__.__name__})"
    )


def _shown(request: HttpRequest) -> str:
    # A response_url is a credential for half an hour: name the kind of call, never the URL.
    path = urlsplit(request.url).path
    return "a response_url" if "/api/" not in path else path.rsplit("/", 1)[-1]


class BoundedRateLimitRetry(AsyncRetryHandler):
    def __init__(self, max_retry_count: int = MAX_RETRIES) -> None:
        super().__init__(max_retry_count=max_retry_count)

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return _retry_after(response) is not None

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        await asyncio.sleep(_retry_after(response) or 0.0)
        state.increment_current_attempt()


class SyncBoundedRateLimitRetry(RetryHandler):
    def __init__(self, max_retry_count: int = MAX_RETRIES) -> None:
        super().__init__(max_retry_count=max_retry_count)

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return _retry_after(response) is not None

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        time.sleep(_retry_after(response) or 0.0)
        state.increment_current_attempt()


def async_web_client(token: str, base_url: str) -> AsyncWebClient:
    return AsyncWebClient(
        token=token,
        base_url=normalized_base_url(base_url),
        timeout=TIMEOUT_SECONDS,
        retry_handlers=[FailureRetry(), BoundedRateLimitRetry()],
    )


def sync_web_client(token: str | None, base_url: str) -> WebClient:
    """For lookups made from worker threads (user groups during authorization)."""
    return WebClient(
        token=token,
        base_url=normalized_base_url(base_url),
        timeout=TIMEOUT_SECONDS,
        retry_handlers=[SyncFailureRetry(), SyncBoundedRateLimitRetry()],
    )


def webhook_client(url: str) -> AsyncWebhookClient:
    """For response_url: a slash command's follow-ups go there, and it rate-limits too."""
    return AsyncWebhookClient(
        url,
        timeout=TIMEOUT_SECONDS,
        retry_handlers=[FailureRetry(), BoundedRateLimitRetry()],
    )


def normalized_base_url(url: str) -> str:
    # slack_sdk joins base_url and the method name by plain concatenation.
    return url if url.endswith("/") else url + "/"
