"""`summary` against a real Prometheus holding three backfilled hours of the simulated mesh."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import NS, Mesh


def summary(mesh: Mesh, command: str) -> dict[str, Any]:
    result = mesh.run(command, "--output", "json", "--images", str(mesh.prometheus.data_dir.parent / "img"))
    assert result.exit_code == 0, result.output
    body: dict[str, Any] = json.loads(result.output)
    assert body["outcome"] == "ok"
    return body


def test_a_half_abort_on_vote_bots_calls_shows_at_vote_bot_and_in_the_whole(mesh: Mesh) -> None:
    body = summary(mesh, f"summary web-svc -n {NS}")
    [web] = body["data"]["services"]
    assert web["service"] == "web-svc" and body["data"]["window"] == "15m"
    assert web["requests_per_second"] == pytest.approx(20.0, rel=0.02)
    assert web["success_rate"] == pytest.approx(0.75, abs=0.01)
    assert web["fault_share"] == pytest.approx(0.25, abs=0.01)
    assert web["top_errors"][0] == {"code": "500", "flags": "FI", "share": pytest.approx(0.25, abs=0.01)}
    callers = {c["workload"]: c for c in web["callers"]}
    assert callers["vote-bot"]["success_rate"] == pytest.approx(0.5, abs=0.01)
    assert callers["vote-bot"]["reporter"] == "source"
    # The gateway's route is governed by the gateway-bound VirtualService, which has no fault.
    assert callers["istio-ingressgateway"]["success_rate"] == pytest.approx(1.0)
    assert callers["istio-ingressgateway"]["fault_share"] == 0
    assert list(callers) == ["vote-bot", "istio-ingressgateway"], "worst caller first"
    assert "50.0%" in body["text"] and "500 FI" in body["text"]


def test_a_3s_delay_shows_in_p99_and_grpc_errors_count_as_failures(mesh: Mesh) -> None:
    [voting] = summary(mesh, f"summary voting-svc.{NS} window=1h")["data"]["services"]
    assert voting["latency_ms"]["p99"] >= 2500
    assert voting["latency_ms"]["p50"] < 100
    # HTTP 200 with grpc_response_status 2 on 10% of votes: failures, though no 5xx was sent.
    assert voting["success_rate"] == pytest.approx(0.9, abs=0.01)
    assert voting["top_errors"][0]["code"] == "grpc 2"
    assert voting["fault_share"] == pytest.approx(0.5, abs=0.01)


def test_the_namespace_summary_lists_every_service_worst_first(mesh: Mesh) -> None:
    body = summary(mesh, f"summary -n {NS}")
    names = [s["service"] for s in body["data"]["services"]]
    assert names == ["web-svc", "voting-svc", "emoji-svc"]
    [chart] = body["images"]
    assert chart.endswith(".png")


@pytest.mark.parametrize(
    ("command", "error"),
    [
        ("summary web-svc window=15x", "window '15x' must be a duration from 1m to 7d"),
        ("summary web-svc window=30s", "window '30s' must be a duration from 1m to 7d"),
        ("summary web-svc window=8d", "window '8d' must be a duration from 1m to 7d"),
        ("summary Web_svc", "service 'Web_svc' is not a valid name"),
        ("summary web-svc emoji-svc", "summary shows one service or all of a namespace"),
        ("summary web-svc colour=red", "unknown option colour="),
        ("graph -n", "-n needs a namespace after it"),
        ("graph window=1h web-svc x", "graph takes a namespace and window="),
    ],
)
def test_bad_input_is_refused_in_one_line(mesh: Mesh, command: str, error: str) -> None:
    result = mesh.run(command)
    assert result.exit_code == 2
    assert error in result.output.splitlines()[0]
