"""What meshbot changes shows up as Kubernetes Events: `kubectl describe vs` and `kubectl get events`
tell a cluster operator who injected a fault and when it ends, with no access to meshbot."""

from __future__ import annotations

from pathlib import Path

from tests.playground.test_kubectl import kubectl_for, table
from tests.scenarios.conftest import NS, Meshbot


def test_faults_and_injection_are_told_as_events(meshbot: Meshbot, tmp_path: Path) -> None:
    kubectl = kubectl_for(meshbot.pg, tmp_path)
    meshbot.ok(f"inject {NS}")
    meshbot.ok(f"expose web-svc.{NS} host=emoji-istio.test.net gateway=emojivoto")
    experiment_id = meshbot.inject_fault(f"fault abort 500 50% web-svc.{NS} for 10m", user="U123")

    described = kubectl.ok("describe", "vs", "emojivoto", "-n", NS)

    events = described.split("Events:")[1]
    assert "Normal  FaultInjected" in events
    assert "abort 500 50% on web-svc by cli:U123, ends " in events
    assert f"(experiment {experiment_id})" in events
    meshbot.ok(f"fault clear {experiment_id}")
    rows = table(kubectl.ok("get", "events", "-n", NS))
    assert rows[0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    seen = {(row[2], row[3]) for row in rows[1:]}
    assert {
        ("SidecarInjectionEnabled", f"namespace/{NS}"),
        ("FaultInjected", "virtualservice/emojivoto"),
        ("FaultCleared", "virtualservice/emojivoto"),
    } <= seen


def test_an_event_that_cannot_be_recorded_fails_nothing(meshbot: Meshbot) -> None:
    meshbot.pg.hooks.fail_next(r"/events$", count=10, code=403)

    meshbot.ok(f"expose web-svc.{NS} host=emoji-istio.test.net gateway=emojivoto")
    experiment_id = meshbot.inject_fault(f"fault delay 3s web-svc.{NS}")

    assert meshbot.virtual_service("emojivoto")["spec"]["http"][0]["name"] == f"meshbot-{experiment_id}"
