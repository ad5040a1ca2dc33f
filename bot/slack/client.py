"""Slack Web API clients with bounded back-off: Retry-After is honoured, within limits.

slack_sdk's own rate-limit handler sleeps whatever Retry-After says, plus up to a second of
jitter; a command's follow-up waiting minutes on one channel would hold its worker for that long,
so ours gives up on waits above ``MAX_WAIT_SECONDS`` and retries at most ``MAX_RETRIES`` times.
"""

from __future__ import annotations

import asyncio
import time

from slack_sdk import WebClient
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

MAX_RETRIES = 3
MAX_WAIT_SECONDS = 30.0
TIMEOUT_SECONDS = 15


def _retry_after(response: HttpResponse | None) -> float | None:
    """The wait Slack asks for, or None when this is not a 429 we are willing to wait out."""
    if response is None or response.status_code != 429:
        return None
    values: list[str] = next((list(v) for k, v in response.headers.items() if k.lower() == "retry-after"), [])
    try:
        wait = float(values[0]) if values else 1.0
    except ValueError:
        wait = 1.0
    return wait if 0 <= wait <= MAX_WAIT_SECONDS else None


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
        retry_handlers=[AsyncConnectionErrorRetryHandler(), BoundedRateLimitRetry()],
    )


def sync_web_client(token: str | None, base_url: str) -> WebClient:
    """For lookups made from worker threads (user groups during authorization)."""
    return WebClient(
        token=token,
        base_url=normalized_base_url(base_url),
        timeout=TIMEOUT_SECONDS,
        retry_handlers=[ConnectionErrorRetryHandler(), SyncBoundedRateLimitRetry()],
    )


def webhook_client(url: str) -> AsyncWebhookClient:
    """For response_url: a slash command's follow-ups go there, and it rate-limits too."""
    return AsyncWebhookClient(
        url,
        timeout=TIMEOUT_SECONDS,
        retry_handlers=[AsyncConnectionErrorRetryHandler(), BoundedRateLimitRetry()],
    )


def normalized_base_url(url: str) -> str:
    # slack_sdk joins base_url and the method name by plain concatenation.
    return url if url.endswith("/") else url + "/"
