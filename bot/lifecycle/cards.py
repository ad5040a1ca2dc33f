"""Posting an ended experiment's report card (domain.report) and its chart into its thread.

Every ending reaches here: the lifecycle's (expiry, guard) with its runtime, and the Slack
front's (``fault clear``, the Stop button) with its own notifier. Called after the end is
recorded and the thread told, so a slow Prometheus delays only the card, never the revert.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.lifecycle.charts import LaterCharts
from bot.lifecycle.notify import Notifier, deliver
from bot.lifecycle.runtime import Runtime
from core.store import Experiment
from domain.report import Card, chart_data, report_card
from handlers.images import card_chart
from handlers.reply import Attachment
from mesh.prometheus import Prometheus, TelemetryUnavailable

log = logging.getLogger(__name__)


def post_report_card(rt: Runtime, experiment: Experiment, how: str, charts: LaterCharts) -> Card | None:
    return send_report_card(
        rt.pipeline.prometheus,
        rt.notifier,
        experiment,
        how,
        now=rt.now,
        charts=charts,
        tail_seconds=rt.settings.card_tail_seconds,
    )


def send_report_card(
    prometheus: Prometheus | None,
    notifier: Notifier,
    experiment: Experiment,
    how: str,
    *,
    now: Callable[[], datetime],
    charts: LaterCharts | None = None,
    tail_seconds: float = 0.0,
) -> Card | None:
    """Posts the card's text now and its chart once ``tail_seconds`` have passed (at once without
    ``charts``), so the chart shows the service recovering after the fault."""
    ended_at = experiment.ended_at or now()
    try:
        card = report_card(prometheus, experiment, ended_at=ended_at, how=how)
    except Exception:
        # A card is a courtesy: nothing it fails at may reach the ending that called it.
        log.exception("could not build the report card of %s", experiment.id)
        return None
    deliver(experiment.id, lambda: notifier.experiment_event(experiment, card.text))
    if prometheus is None:
        return card

    def draw() -> None:
        chart = card_chart_of(
            prometheus, experiment, ended_at=ended_at, now=now(), tail=timedelta(seconds=tail_seconds)
        )
        if chart is not None:
            deliver(experiment.id, lambda: notifier.experiment_files(experiment, [chart]))

    if charts is None or tail_seconds <= 0:
        draw()
    else:
        charts.after(tail_seconds, draw)
    return card


def card_chart_of(
    prometheus: Prometheus | None,
    experiment: Experiment,
    *,
    ended_at: datetime,
    now: datetime,
    tail: timedelta,
) -> Attachment | None:
    """The card's chart, or None when there is nothing to draw (no Prometheus, no requests): the
    card's text already says what could not be measured."""
    if prometheus is None:
        return None
    try:
        data = chart_data(prometheus, experiment, ended_at=ended_at, now=now, tail=tail)
        if not data.series:
            return None
        title = f"{experiment.id}: {experiment.kind} on {experiment.service}.{experiment.namespace}"
        png = card_chart(data.series, fault_start=data.fault_start, fault_end=data.fault_end, title=title)
    except TelemetryUnavailable as exc:
        log.warning("no chart for the report card of %s: %s", experiment.id, exc)
        return None
    except Exception:
        log.exception("could not draw the report card chart of %s", experiment.id)
        return None
    return Attachment(
        name=f"report-{experiment.id}.png",
        content=png,
        title=f"Report card of {experiment.id}: rate, success, p99 per caller (shaded: the fault)",
    )
