"""Slack failing on alternate calls (429 with Retry-After, 503): every message arrives, none twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from bot.slack import client as slack_client
from tests.resilience.figures import attempt
from tests.slack.conftest import SlackApp, SlackClient

NS = "emojivoto-istio"


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(slack_client, "BACKOFF_SECONDS", 0.05)
    yield


def test_slack_answering_429_and_5xx_on_alternate_calls_posts_nothing_twice(
    slack: SlackClient, slack_app: SlackApp
) -> None:
    services = ("web-svc", "emoji-svc", "voting-svc", "web-svc")
    for n, service in enumerate(services):
        with attempt("outages"):
            slack.fake.script("chat.postMessage", 429 if n % 2 else 503, retry_after=0)
            slack.command(f"fault delay 3s {service}.{NS} for 5m")
            slack.fake.wait_for(
                lambda calls, n=n: (
                    sum(
                        "VirtualServices" in c.all_text() and c.status == 200
                        for c in calls
                        if c.path.endswith("chat.postMessage")
                    )
                    > n
                )
            )
    with attempt("outages"):
        delivered = Counter(
            (c.params.get("thread_ts"), c.all_text())
            for c in slack.fake.calls_to("chat.postMessage")
            if c.status == 200
        )
        assert all(count == 1 for count in delivered.values()), [k for k, v in delivered.items() if v > 1]
        failed = [c.status for c in slack.fake.calls_to("chat.postMessage") if c.status != 200]
        assert sorted(failed) == [429, 429, 503, 503], failed
