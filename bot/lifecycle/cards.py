"""Posting an ended experiment's report card (domain.report) into its thread.

Built on the worker that ended the experiment but after the end is recorded and the thread told,
so a slow Prometheus delays only the card, never the revert.
"""

from __future__ import annotations

import logging

from bot.lifecycle.notify import deliver
from bot.lifecycle.runtime import Runtime
from core.store import Experiment
from domain.report import Card, report_card

log = logging.getLogger(__name__)


def post_report_card(rt: Runtime, experiment: Experiment, how: str) -> Card | None:
    try:
        card = report_card(
            rt.pipeline.prometheus, experiment, ended_at=experiment.ended_at or rt.now(), how=how
        )
    except Exception:
        # A card is a courtesy: nothing it fails at may reach the ending that called it.
        log.exception("could not build the report card of %s", experiment.id)
        return None
    notifier = rt.notifier
    deliver(experiment.id, lambda: notifier.experiment_event(experiment, card.text))
    upload_card_chart(rt, experiment, card)
    return card


def upload_card_chart(rt: Runtime, experiment: Experiment, card: Card) -> None:
    """The seam for the card's chart PNG (rate, success, p99 over baseline + fault + tail): the
    Slack files_upload_v2 helper is being added on another branch; once on main, render the chart
    here and hand it to the notifier as an attachment. Until then the card is text only."""
