"""POST /api/v1/commands with `summary` and `graph`: `data` in the documented shapes, images as base64."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from bot.app import create_app
from bot.pipeline import Pipeline
from core.policy import Policy
from core.settings import Settings
from core.store import Store
from core.store.migrate import upgrade
from mesh.kube import for_url
from mesh.prometheus import Prometheus

from .conftest import NS, Mesh

TOKEN = "api-token-0123456789abcdef"


@pytest.fixture
def api(mesh: Mesh, tmp_path: Path) -> Iterator[TestClient]:
    store = Store.from_url(f"sqlite:///{tmp_path / 'meshbot.db'}")
    upgrade(store.engine)
    pipeline = Pipeline(
        store=store,
        kube=for_url(mesh.playground.url),
        policy=Policy.model_validate({}),
        prometheus=Prometheus(mesh.prometheus.url),
    )
    settings = Settings(api_token=TOKEN, lifecycle_enabled=False)
    try:
        with TestClient(create_app(settings, pipeline=pipeline)) as http:
            yield http
    finally:
        store.dispose()


def command(api: TestClient, text: str) -> dict[str, Any]:
    answer = api.post(
        "/api/v1/commands", headers={"Authorization": f"Bearer {TOKEN}"}, json={"command": text}
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def png(image: dict[str, Any]) -> Image.Image:
    assert image["mime"] == "image/png"
    return Image.open(io.BytesIO(base64.b64decode(image["base64"])))


def test_summary_answers_the_documented_shape_and_a_base64_chart(api: TestClient) -> None:
    body = command(api, f"summary web-svc -n {NS}")
    data = body["data"]
    assert (data["window"], data["namespace"]) == ("15m", NS)
    (web,) = data["services"]
    assert {
        "service",
        "namespace",
        "requests_per_second",
        "success_rate",
        "latency_ms",
        "fault_share",
        "top_errors",
        "callers",
    } <= set(web)
    assert web["success_rate"] == pytest.approx(0.75, abs=0.02)
    assert web["fault_share"] == pytest.approx(0.25, abs=0.02)
    assert set(web["latency_ms"]) == {"p50", "p90", "p99"}
    assert web["top_errors"][0]["code"] == "500" and web["top_errors"][0]["flags"] == "FI"
    bot = next(c for c in web["callers"] if c["workload"] == "vote-bot")
    assert bot["success_rate"] == pytest.approx(0.5, abs=0.02)
    (chart,) = body["images"]
    assert chart["name"] == "summary-web-svc.png" and chart["title"] == "Success of web-svc over 15m"
    image = png(chart)
    assert image.format == "PNG" and image.width >= 400 and image.height >= 100


def test_graph_answers_edges_and_a_base64_picture(api: TestClient) -> None:
    body = command(api, f"graph -n {NS}")
    edges = body["data"]["edges"]
    assert body["data"]["source"] == "prometheus"
    assert set(edges[0]) == {
        "source",
        "source_namespace",
        "destination",
        "service",
        "protocol",
        "requests_per_second",
        "error_rate",
        "fault_share",
    }
    assert (edges[0]["source"], edges[0]["destination"]) == ("vote-bot", "web")
    assert edges[0]["error_rate"] == pytest.approx(0.5, abs=0.01)
    (picture,) = body["images"]
    assert picture["name"] == f"graph-{NS}.png"
    assert png(picture).width >= 300
