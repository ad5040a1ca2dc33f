"""A fault promises to end by itself: without a lifecycle leader to keep that promise it is
refused with the reason and the way out, or `meshbot run --wait` keeps it from the terminal."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from .conftest import MESHBOT_SCRIPT, NS, Meshbot

FAULT = f"fault delay 1s web-svc.{NS} for 10m"


@pytest.fixture
def alone(make_meshbot: Callable[..., Meshbot]) -> Meshbot:
    """meshbot against the write-up's cluster with no lifecycle leading anywhere."""
    return make_meshbot("article", leader=False)


def test_a_fault_with_no_leader_is_refused_with_the_reason_and_the_way_out(alone: Meshbot) -> None:
    before = alone.virtual_services()
    result = alone.run(FAULT)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "no meshbot lifecycle is leading, so nothing would end this fault on time (Lease "
        "meshbot/meshbot-lifecycle does not exist (no lifecycle has ever led here)). Run `meshbot "
        "serve` or `meshbot lifecycle` against this cluster, or from the CLI add --wait so the CLI "
        "itself ends the fault"
    )
    assert alone.virtual_services() == before
    assert alone.experiments() == {}
    event = alone.last_event()
    assert (event.verb, event.outcome, event.namespace) == ("fault", "refused", NS)


def test_a_lapsed_lease_counts_as_no_leader(alone: Meshbot) -> None:
    alone.lead_elsewhere(renewed=datetime.now(UTC) - timedelta(hours=2), holder="meshbot-dead")
    result = alone.run(FAULT)
    assert result.exit_code == 1
    assert "Lease meshbot/meshbot-lifecycle lapsed: meshbot-dead last renewed it" in result.stderr
    assert alone.experiments() == {}


def test_status_says_whether_a_lifecycle_leads(alone: Meshbot) -> None:
    assert "⚠ No lifecycle leads (Lease meshbot/meshbot-lifecycle does not exist" in alone.ok("status")
    alone.lead_elsewhere()
    assert "Faults end on time: the lifecycle is led by meshbot-7d9f-x2." in alone.ok("status")
    # Other commands never needed a leader.
    assert alone.run(f"inject {NS}").exit_code == 0


def test_wait_keeps_the_promise_from_the_terminal(alone: Meshbot) -> None:
    before = alone.virtual_services()
    result = alone.run(f"fault abort 500 web-svc.{NS} 50% for 2s", wait=True)
    assert result.exit_code == 0, result.output
    assert "ended on time" in result.stdout
    assert alone.virtual_services() == before, "the VirtualService is restored exactly"
    (experiment,) = alone.experiments().values()
    assert (experiment.state, experiment.end_reason) == ("ended", "expired")
    assert experiment.ended_at is not None and experiment.expires_at is not None
    assert experiment.ended_at >= experiment.expires_at
    verbs = [(e.verb, e.outcome) for e in alone.audit_events()]
    assert verbs == [("fault", "ok"), ("expire", "ok")]


def test_wait_clears_the_fault_on_sigterm(alone: Meshbot) -> None:
    before = alone.virtual_services()
    process = subprocess.Popen(
        [str(MESHBOT_SCRIPT), "run", FAULT, "--wait"],
        env={**os.environ, **alone.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and alone.virtual_services() == before:
            time.sleep(0.1)
        assert alone.virtual_services() != before, "the fault was applied"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Interrupted: clearing" in out
    assert alone.virtual_services() == before
    (experiment,) = alone.experiments().values()
    assert (experiment.state, experiment.end_reason) == ("ended", "cleared by user")


def test_a_fault_without_istio_says_its_crds_are_missing_and_how_to_install(
    make_meshbot: Callable[..., Meshbot],
) -> None:
    bare = make_meshbot("article-bare")
    result = bare.run(FAULT)
    assert result.exit_code == 1
    assert result.stderr.strip().endswith(
        "virtualservices.networking.istio.io/v1 are not served: Istio's CRDs are missing from this "
        "cluster. Install Istio first: `install` (istioctl install --set profile=demo)"
    )
    assert "could not find the requested resource" not in result.stderr
    # Recorded before the cluster is read (so a crash leaves a trace), then marked failed.
    assert [e.state for e in bare.experiments().values()] == ["failed"]
    assert bare.writes() == []
