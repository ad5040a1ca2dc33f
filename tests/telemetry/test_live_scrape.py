"""The playground serves the simulated mesh's metrics live: a real Prometheus scraping it every
second sees the traffic the cluster shapes, and summary reads it."""

from __future__ import annotations

import json
import time
from urllib.parse import urlparse

from tests.support.prometheus import running_prometheus

from .conftest import NS, Mesh

METRICS_PATH = "/_playground/traffic/metrics"


def test_a_scraping_prometheus_shows_live_numbers(mesh: Mesh) -> None:
    address = urlparse(mesh.playground.url).netloc
    with running_prometheus(scrape=[address], metrics_path=METRICS_PATH) as live:
        body: dict[str, object] = {}
        # rate() needs two scrapes in the window; poll rather than sleep a fixed time.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            result = mesh.run(
                f"summary web-svc -n {NS} window=1m", "--output", "json", prometheus_url=live.url
            )
            body = json.loads(result.output)
            if body["data"]["services"]:  # type: ignore[index]
                break
            time.sleep(0.5)
        [web] = body["data"]["services"]  # type: ignore[index]
        callers = {c["workload"]: c for c in web["callers"]}
        assert callers["vote-bot"]["success_rate"] < 0.7
        assert callers["istio-ingressgateway"]["success_rate"] == 1.0
