"""Prometheus stopped, hung or empty: each command answers at once, says what is missing, shows the rest."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.sockets import closed_port as free_port
from tests.support.sockets import hung_server

from .conftest import NS, Mesh


@pytest.fixture
def closed_port() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def hung() -> Iterator[str]:
    with hung_server() as url:
        yield url


@pytest.mark.parametrize("verb", ["summary web-svc", "graph"])
def test_a_stopped_prometheus_is_named_in_one_line(mesh: Mesh, closed_port: str, verb: str) -> None:
    result = mesh.run(f"{verb} -n {NS}", prometheus_url=closed_port)
    assert result.exit_code == 1
    assert f"Prometheus at {closed_port} cannot be reached" in result.output.splitlines()[0]


def test_status_shows_the_cluster_and_says_the_golden_signals_are_missing(
    mesh: Mesh, closed_port: str
) -> None:
    result = mesh.run("status", prometheus_url=closed_port)
    assert result.exit_code == 0, result.output
    assert "*Control plane*" in result.output and "emoji-istio.test.net" in result.output
    assert f"⚠ No golden signals: Prometheus at {closed_port} cannot be reached" in result.output


def test_status_has_a_golden_line_per_exposed_service(mesh: Mesh) -> None:
    result = mesh.run("status")
    assert result.exit_code == 0, result.output
    assert f"• web-svc.{NS}: 20.0 rps, 75.0% success" in result.output


def test_a_hung_prometheus_costs_one_time_out_not_one_per_query(mesh: Mesh, hung: str) -> None:
    result = mesh.run(f"summary -n {NS}", prometheus_url=hung, MESHBOT_PROMETHEUS_TIMEOUT_SECONDS="0.5")
    assert result.exit_code == 1
    assert f"Prometheus at {hung} did not answer within 0.5s" in result.output


def test_an_empty_prometheus_says_there_is_no_traffic(mesh: Mesh) -> None:
    result = mesh.run("summary web-svc -n default")
    assert result.exit_code == 0, result.output
    assert "Prometheus has no Istio requests for web-svc in the last 15m" in result.output
