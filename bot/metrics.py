"""meshbot's own Prometheus metrics, served at ``GET /metrics``.

One registry per app (not prometheus_client's global one), so every app a test builds starts from
zero and two apps in one process never collide.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from handlers import VERBS

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Slack allows 3 s; the buckets show how much of that the ack uses.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)


class _ActiveExperiments(Collector):
    """Counts active experiments at scrape time: the store is the truth, not a gauge we maintain."""

    def __init__(self, count: Callable[[], int]) -> None:
        self._count = count

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "meshbot_active_experiments", "Faults currently applied (active or ending)."
        )
        try:
            family.add_metric([], float(self._count()))
        except Exception:
            # A scrape must not fail because the database is down; /readyz reports that.
            log.warning("could not count active experiments for /metrics", exc_info=True)
            return []
        return [family]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.commands = Counter(
            "meshbot_commands",
            "Commands run through the pipeline, by verb, outcome and source.",
            ["verb", "outcome", "source"],
            registry=self.registry,
        )
        self.ack_seconds = Histogram(
            "meshbot_slack_ack_seconds",
            "Time from receiving a Slack request to acknowledging it.",
            ["kind"],
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )
        self.slack_rejected = Counter(
            "meshbot_slack_requests_rejected",
            "Slack requests refused before any listener ran: reason signature, timestamp, "
            "authorization, malformed (a signed body Bolt cannot read) or error (Bolt raised).",
            ["reason"],
            registry=self.registry,
        )
        self.slack_duplicates = Counter(
            "meshbot_slack_retries_ignored",
            "Slack deliveries acknowledged without running because they repeated one already seen.",
            registry=self.registry,
        )
        self.slack_busy = Counter(
            "meshbot_slack_busy",
            'Slack requests answered "busy, try again" at once because their lane (commands or '
            "urgent) had no place left.",
            ["lane"],
            registry=self.registry,
        )
        self.slack_api_failures = Counter(
            "meshbot_slack_api_failures",
            "Calls to Slack that failed after retries (the command's result stays in the store).",
            ["method"],
            registry=self.registry,
        )

    def count_active_experiments(self, count: Callable[[], int]) -> None:
        self.registry.register(_ActiveExperiments(count))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def verb_label(verb: str | None) -> str:
    """A command's verb as a metric label: known verbs only, so labels stay a small set."""
    return verb if verb is not None and verb in VERBS else "unknown"
