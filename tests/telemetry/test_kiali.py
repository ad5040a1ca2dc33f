"""`graph` through Kiali's REST API (a stand-in serving Kiali's real response), its failures, and
the fallback to the edges meshbot builds from Prometheus."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesh.kiali import Kiali, edges_from_graph
from mesh.prometheus import TelemetryUnavailable, edges_from
from tests.support.kiali import StubKiali

from .conftest import NS, Mesh

TOKEN = "kiali-sa-token"


@pytest.fixture
def kiali() -> Iterator[StubKiali]:
    stub = StubKiali().start()
    yield stub
    stub.stop()


def prometheus_rows(graph: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    """The istio_requests_total rates (as Prometheus's query API returns them) behind Kiali's
    edges: one series per edge, code and flags, each reported by the caller's proxy."""
    nodes = {n["data"]["id"]: n["data"] for n in graph["elements"]["nodes"]}
    rows = []
    for element in graph["elements"]["edges"]:
        data = element["data"]
        source, target, traffic = nodes[data["source"]], nodes[data["target"]], data["traffic"]
        protocol = traffic["protocol"]
        if protocol == "tcp" or target.get("namespace") != namespace:
            continue
        rate = float(traffic["rates"][protocol])
        for code, response in traffic["responses"].items():
            host = next(iter(response.get("hosts") or {"": 0}))
            for flags, percent in response["flags"].items():
                metric = {
                    "reporter": "source",
                    "source_workload": source.get("workload") or "unknown",
                    "source_workload_namespace": source.get("namespace") or "",
                    "destination_workload": target.get("workload") or "",
                    "destination_service_name": host.split(":")[0]
                    or (target.get("destServices") or [{}])[0].get("name")
                    or target.get("workload", ""),
                    "request_protocol": protocol,
                    "response_code": "200" if protocol == "grpc" else code,
                    "grpc_response_status": code if protocol == "grpc" else "",
                    "response_flags": flags,
                }
                rows.append({"metric": metric, "value": [0, str(rate * float(percent) / 100)]})
    return rows


def test_kialis_graph_gives_the_edges_prometheus_gives_for_the_same_traffic(kiali: StubKiali) -> None:
    from_kiali = Kiali(kiali.url).edges("bookinfo", "10m")
    from_prometheus = edges_from(prometheus_rows(kiali.graph, "bookinfo"))

    assert [(e.source, e.destination, e.service, e.protocol) for e in from_kiali] == [
        (e.source, e.destination, e.service, e.protocol) for e in from_prometheus
    ]
    for k, p in zip(from_kiali, from_prometheus, strict=True):
        assert k.requests_per_second == pytest.approx(p.requests_per_second)
        assert k.error_rate == pytest.approx(p.error_rate, abs=0.001)
        assert k.fault_share == pytest.approx(p.fault_share, abs=0.001)
    by_pair = {(e.source, e.destination): e for e in from_kiali}
    # 5xx only, as for Prometheus: Kiali's own httpPercentErr (50) also counts the 4xx.
    assert by_pair["productpage-v1", "details-v1"].error_rate == pytest.approx(0.25)
    assert by_pair["reviews-v3", "ratings-v1"].error_rate == pytest.approx(1 / 3, abs=0.001)
    assert by_pair["ingressgateway-unknown", "productpage-v1"].requests_per_second == 100.0
    assert not any(e.protocol == "tcp" for e in from_kiali)
    path, query = kiali.requests[-1]
    assert (path, query) == (
        "/kiali/api/namespaces/graph",
        {"namespaces": "bookinfo", "graphType": "workload", "duration": "600s"},
    )


def test_graph_reads_kiali_when_configured(mesh: Mesh, kiali: StubKiali, tmp_path: Path) -> None:
    result = mesh.run(
        "graph -n bookinfo", "--output", "json", "--images", str(tmp_path), MESHBOT_KIALI_URL=kiali.url
    )
    body = json.loads(result.stdout)
    assert result.exit_code == 0, result.output
    assert body["data"]["source"] == "kiali"
    worst = body["data"]["edges"][0]
    assert (worst["source"], worst["destination"], worst["service"]) == (
        "reviews-v2",
        "ratings-v1",
        "ratings",
    )
    assert worst["requests_per_second"] == 30.0 and worst["error_rate"] == pytest.approx(1 / 3, abs=0.001)
    assert "(from Kiali)" in body["text"]
    assert body["images"] and Path(body["images"][0]).read_bytes()[:4] == b"\x89PNG"


def _no_token(stub: StubKiali) -> dict[str, str]:
    stub.token = TOKEN
    return {}


def _wrong_token(stub: StubKiali) -> dict[str, str]:
    stub.token = TOKEN
    return {"MESHBOT_KIALI_TOKEN": "not-the-token"}


def _unknown_namespace(stub: StubKiali) -> dict[str, str]:
    return {}  # the fixture knows bookinfo and bankapp, not the mesh's namespace


def _failing(stub: StubKiali) -> dict[str, str]:
    stub.failing = True
    return {}


def _hanging(stub: StubKiali) -> dict[str, str]:
    stub.hanging = True
    return {"MESHBOT_PROMETHEUS_TIMEOUT_SECONDS": "1"}


@pytest.mark.parametrize(
    ("break_kiali", "said"),
    [
        (_no_token, "refused meshbot's credentials (401): check MESHBOT_KIALI_TOKEN"),
        (_wrong_token, "refused meshbot's credentials (401): check MESHBOT_KIALI_TOKEN"),
        (_unknown_namespace, f'answered 404: namespaces "{NS}" not found'),
        (_failing, "answered 500: Error while fetching graph: could not reach Prometheus"),
        (_hanging, "did not answer within 1s"),
    ],
)
def test_kiali_failing_says_so_in_one_line_and_falls_back_to_prometheus(
    mesh: Mesh, kiali: StubKiali, tmp_path: Path, break_kiali: Any, said: str
) -> None:
    env = break_kiali(kiali)
    result = mesh.run(
        f"graph -n {NS}", "--output", "json", "--images", str(tmp_path), MESHBOT_KIALI_URL=kiali.url, **env
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    note = body["data"]["note"]
    assert note == f"Kiali at {kiali.url} {said}; edges built from Prometheus instead."
    assert note in body["text"] and "\n" not in note
    assert body["data"]["source"] == "prometheus"
    edges = {(e["source"], e["destination"]): e for e in body["data"]["edges"]}
    assert edges["vote-bot", "web"]["error_rate"] == pytest.approx(0.5, abs=0.01)


def test_kiali_down_without_prometheus_is_a_one_line_error(kiali: StubKiali) -> None:
    kiali.stop()
    with pytest.raises(
        TelemetryUnavailable, match=r"^Kiali at http://127.0.0.1:\d+/kiali cannot be reached$"
    ):
        Kiali(kiali.url, timeout=1).edges("bookinfo", "10m")


def test_health_is_each_workloads_failed_share_as_prometheus_counts_failures(kiali: StubKiali) -> None:
    kiali.health = {"bookinfo": {"details-v1": {"http": {"200": 3.0, "404": 1.0, "503": 1.0}}, "idle": {}}}
    assert Kiali(kiali.url).health("bookinfo") == {"details-v1": pytest.approx(0.2), "idle": None}


def test_a_graph_kiali_cannot_have_drawn_is_reported_not_crashed(kiali: StubKiali) -> None:
    kiali.graph = {"elements": {"nodes": [], "edges": [{"data": {"source": "a", "target": "b"}}]}}
    kiali.health = {"bookinfo": {}}
    with pytest.raises(TelemetryUnavailable, match="answered a graph meshbot cannot read"):
        Kiali(kiali.url).edges("bookinfo", "10m")
    assert edges_from_graph({"elements": {}}, "bookinfo") == []
