"""Prometheus stopped, hung or empty: each command answers at once, says what is missing, shows the rest."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from .conftest import NS, Mesh


@pytest.fixture
def closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def hung_server() -> Iterator[str]:
    """Accepts connections and never answers, like a Prometheus stuck on a heavy query."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


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


def test_a_hung_prometheus_costs_one_time_out_not_one_per_query(mesh: Mesh, hung_server: str) -> None:
    result = mesh.run(
        f"summary -n {NS}", prometheus_url=hung_server, MESHBOT_PROMETHEUS_TIMEOUT_SECONDS="0.5"
    )
    assert result.exit_code == 1
    assert f"Prometheus at {hung_server} did not answer within 0.5s" in result.output


def test_an_empty_prometheus_says_there_is_no_traffic(mesh: Mesh) -> None:
    result = mesh.run("summary web-svc -n default")
    assert result.exit_code == 0, result.output
    assert "Prometheus has no Istio requests for web-svc in the last 15m" in result.output
