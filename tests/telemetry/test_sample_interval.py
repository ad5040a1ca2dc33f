"""The report card's chart reads rates over a window of a few samples, so it needs the interval
between samples: 15 s in the backfilled history (Prometheus's default scrape), none for a service
nobody calls."""

from __future__ import annotations

import time

from mesh.prometheus import Prometheus

from .conftest import NS, Mesh


def test_the_interval_between_samples_is_read_from_the_samples(mesh: Mesh) -> None:
    prometheus = Prometheus(mesh.prometheus.url)
    # 8 samples in the 2-minute window, or 9 when one sits on its edge.
    assert prometheus.sample_interval(NS, "web-svc", at=time.time()) in (15.0, 120.0 / 9)


def test_a_service_without_samples_has_no_interval(mesh: Mesh) -> None:
    prometheus = Prometheus(mesh.prometheus.url)
    assert prometheus.sample_interval(NS, "nobody-calls-me", at=time.time()) is None
