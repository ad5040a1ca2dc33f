"""`graph` and the images replies carry: the edges the mesh has, and PNGs with them drawn."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from handlers.images import FAULT_COLOUR, OK_COLOUR, graph_dot
from mesh.prometheus import Edge

from .conftest import NS, Mesh


def rgb(colour: str) -> tuple[int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


def pixels_near(image: Image.Image, colour: str, tolerance: int = 40) -> int:
    target = rgb(colour)
    raw = image.convert("RGB").tobytes()
    triples = zip(raw[0::3], raw[1::3], raw[2::3], strict=True)
    return sum(1 for p in triples if all(abs(a - b) <= tolerance for a, b in zip(p, target, strict=True)))


def run_json(mesh: Mesh, command: str, images: Path) -> dict[str, Any]:
    result = mesh.run(command, "--output", "json", "--images", str(images))
    assert result.exit_code == 0, result.output
    body: dict[str, Any] = json.loads(result.output)
    return body


def test_graph_has_the_meshs_edges_with_vote_bot_to_web_at_half_errors(mesh: Mesh, tmp_path: Path) -> None:
    body = run_json(mesh, f"graph -n {NS}", tmp_path)
    edges = {(e["source"], e["destination"]): e for e in body["data"]["edges"]}
    assert set(edges) == {
        ("vote-bot", "web"),
        ("istio-ingressgateway", "web"),
        ("web", "emoji"),
        ("web", "voting"),
    }
    assert edges["vote-bot", "web"]["error_rate"] == pytest.approx(0.5, abs=0.01)
    assert edges["vote-bot", "web"]["protocol"] == "http"
    assert edges["istio-ingressgateway", "web"]["error_rate"] == pytest.approx(0.0)
    assert edges["web", "voting"]["protocol"] == "grpc"
    assert edges["web", "voting"]["error_rate"] == pytest.approx(0.1, abs=0.01)
    assert body["data"]["edges"][0]["source"] == "vote-bot", "worst edge first"
    assert "vote-bot → web (http): 10.0 rps, 50% err, 50% fault ⚡ faulted" in body["text"]

    [path] = body["images"]
    png = Path(path).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and 300 <= image.width <= 4000 and 100 <= image.height <= 3000
    # The faulted edge is drawn red, the healthy ones green.
    assert pixels_near(image, FAULT_COLOUR) > 50
    assert pixels_near(image, OK_COLOUR) > 50


def test_graphviz_lays_out_every_workload_and_labels_each_edge() -> None:
    edges = [
        Edge("vote-bot", NS, "web", "web-svc", "http", 10.0, 0.5, 0.5),
        Edge("web", NS, "voting", "voting-svc", "grpc", 10.0, 0.1, 0.0),
    ]
    laid_out = subprocess.run(
        ["dot", "-Tjson"], input=graph_dot(edges, "t").encode(), capture_output=True, check=True, timeout=10
    )
    graph = json.loads(laid_out.stdout)
    nodes = {o["name"]: o["pos"] for o in graph["objects"]}
    assert set(nodes) == {"vote-bot", "web", "voting"}
    # Left to right: a caller stands left of what it calls.
    x = {name: float(pos.split(",")[0]) for name, pos in nodes.items()}
    assert x["vote-bot"] < x["web"] < x["voting"]
    labels = sorted(e["label"] for e in graph["edges"])
    assert labels == ["10.0 rps, 10% err", "10.0 rps, 50% err, 50% fault"]


def test_the_summary_chart_shows_failures_in_red_beside_success_in_green(mesh: Mesh, tmp_path: Path) -> None:
    body = run_json(mesh, f"summary web-svc -n {NS}", tmp_path)
    [path] = body["images"]
    image = Image.open(path)
    assert image.format == "PNG" and image.width >= 400 and image.height >= 100
    red, green = pixels_near(image, FAULT_COLOUR, 10), pixels_near(image, OK_COLOUR, 10)
    # vote-bot's bar is half red; the gateway's is all green: about 1 red pixel to 3 green.
    assert red > 500 and green > 500
    assert red / green == pytest.approx(1 / 3, rel=0.15)
