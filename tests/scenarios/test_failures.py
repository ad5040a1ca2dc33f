"""Commands that fail half-way, made to fail by the playground's hooks: the cluster is left as it
was (or the reply says exactly what stayed), the experiment is recorded as failed, exit code 1."""

from __future__ import annotations

from typing import Any

import pytest

from mesh.faults import ANNOTATION
from tests.scenarios.conftest import NS, Meshbot

ABORT = f"fault abort 500 50% web-svc.{NS}"
# A mesh-internal VirtualService for web-svc beside the write-up's gateway-bound `emojivoto`: a
# fault on web-svc has to go into both.
WEB_SVC_ROUTE: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "web-svc", "annotations": {"owner": "team-web"}},
    "spec": {
        "hosts": ["web-svc"],
        "http": [{"name": "all", "route": [{"destination": {"host": "web-svc"}}]}],
    },
}


@pytest.fixture
def two_routes(meshbot: Meshbot) -> Meshbot:
    """Two VirtualServices sending to web-svc: `emojivoto` (exposed, as in the write-up), `web-svc`."""
    meshbot.ok(f"expose web-svc.{NS} host=emoji-istio.test.net gateway=emojivoto")
    meshbot.create_virtual_service(WEB_SVC_ROUTE)
    return meshbot


def patches(meshbot: Meshbot, since: int) -> list[tuple[str, int]]:
    return [
        (w.path.rsplit("/", 1)[-1], w.status)
        for w in meshbot.writes()[since:]
        if w.method == "PATCH" and "/virtualservices/" in w.path
    ]


def test_a_fault_that_fails_on_the_second_virtualservice_changes_nothing(two_routes: Meshbot) -> None:
    mb = two_routes
    before = mb.virtual_services()
    writes = len(mb.writes())
    mb.pg.hooks.fail_next(r"/virtualservices/web-svc$", 1, code=500, method="PATCH")

    result = mb.run(ABORT)

    assert result.exit_code == 1
    assert result.stdout == ""
    (experiment,) = mb.experiments().values()
    assert result.stderr.startswith(
        f"Could not inject the fault on web-svc.{NS} (experiment {experiment.id}, recorded as failed): "
        "the fault was not injected: "
    )
    assert "adding the fault to VirtualService emojivoto-istio/web-svc" in result.stderr
    assert (
        "the changes already made to VirtualService emojivoto were undone: nothing was changed"
        in result.stderr
    )
    # The first patch went in, the second failed, the first was taken out again.
    assert patches(mb, writes) == [("emojivoto", 200), ("web-svc", 500), ("emojivoto", 200)]
    assert mb.virtual_services() == before

    assert experiment.state == "failed"
    assert experiment.detail is not None and "was not injected" in experiment.detail
    assert "⚠" not in result.stderr  # nothing stayed behind to warn about
    event = mb.last_event()
    assert (event.command, event.outcome, event.experiment_id) == (ABORT, "error", experiment.id)
    assert (event.namespace, event.service) == (NS, "web-svc")
    assert mb.ok("fault list").strip() == "No active faults."

    # Nothing is in the way of trying again.
    experiment_id = mb.inject_fault(ABORT)
    assert {
        name: list(vs["annotations"].get(ANNOTATION, "")) != [] for name, vs in mb.virtual_services().items()
    } == {
        "emojivoto": True,
        "web-svc": True,
    }
    mb.ok(f"fault clear {experiment_id}")
    assert mb.virtual_services() == before


def test_when_the_undo_fails_too_the_reply_says_what_stayed(two_routes: Meshbot) -> None:
    mb = two_routes
    before = mb.virtual_services()
    mb.pg.hooks.fail_next(r"/virtualservices/web-svc$", 1, code=500, method="PATCH")
    # Undoing re-reads `emojivoto` before taking the fault out again: make that fail.
    mb.pg.hooks.fail_next(r"/virtualservices/emojivoto$", 1, code=503, method="GET")

    result = mb.run(ABORT)

    assert result.exit_code == 1
    (experiment,) = mb.experiments().values()
    assert experiment.state == "failed"
    assert "undoing the change failed for VirtualService emojivoto" in result.stderr
    assert "Nothing was changed" not in result.stderr
    assert (
        f"⚠ experiment {experiment.id} is still in VirtualService emojivoto: "
        f"`fault clear {experiment.id}` removes it"
    ) in result.stderr
    assert mb.virtual_services()["emojivoto"] != before["emojivoto"]
    assert mb.virtual_services()["web-svc"] == before["web-svc"]
    assert mb.last_event().experiment_id == experiment.id

    reply = mb.ok(f"fault clear {experiment.id}")
    assert f"✔ {experiment.id} on web-svc.{NS} cleared (1 fault route(s) removed from " in reply
    assert mb.virtual_services() == before
    assert mb.experiment(experiment.id).state == "failed"  # the record of what went wrong stays


def test_a_fault_whose_new_virtualservice_cannot_be_created_leaves_nothing(meshbot: Meshbot) -> None:
    meshbot.pg.hooks.fail_next(r"/namespaces/emojivoto-istio/virtualservices$", 1, code=500, method="POST")

    result = meshbot.run(f"fault delay 3s voting-svc.{NS}")

    assert result.exit_code == 1
    assert "creating VirtualService emojivoto-istio/meshbot-voting-svc" in result.stderr
    assert "nothing was changed" in result.stderr
    assert meshbot.virtual_services() == {}
    assert [e.state for e in meshbot.experiments().values()] == ["failed"]


def test_a_clear_that_fails_half_way_can_be_retried(two_routes: Meshbot) -> None:
    mb = two_routes
    before = mb.virtual_services()
    experiment_id = mb.inject_fault(ABORT)
    mb.pg.hooks.fail_next(r"/virtualservices/web-svc$", 1, code=500, method="PATCH")

    result = mb.run(f"fault clear {experiment_id}")

    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"✖ {experiment_id} on web-svc.{NS}: could not be cleared: experiment {experiment_id} is still in "
        "VirtualService web-svc: removing experiment"
    )
    assert result.stderr.rstrip().endswith("it was removed from emojivoto")
    assert mb.virtual_services()["emojivoto"] == before["emojivoto"]
    assert mb.virtual_services()["web-svc"] != before["web-svc"]
    assert mb.last_event().outcome == "error"
    # Still listed, so it is not forgotten while half of it is in the cluster.
    assert experiment_id in mb.ok("fault list")

    mb.ok(f"fault clear web-svc.{NS}")
    assert mb.virtual_services() == before
    assert mb.experiment(experiment_id).state == "ended"


def test_a_failed_expose_leaves_no_gateway_behind(meshbot: Meshbot) -> None:
    meshbot.pg.hooks.fail_next(r"/virtualservices$", 1, code=500, method="POST")

    result = meshbot.run(f"expose web-svc.{NS} host=emoji-istio.test.net gateway=emojivoto")

    assert result.exit_code == 1
    assert result.stderr.startswith("expose failed: creating VirtualService emojivoto-istio/emojivoto: ")
    assert meshbot.istio_objects("gateways") == []
    assert meshbot.virtual_services() == {}
    assert meshbot.last_event().outcome == "error"


def test_an_istioctl_that_cannot_run_is_an_error(make_meshbot: Any) -> None:
    mb = make_meshbot("article-bare")
    mb.env["MESHBOT_ISTIOCTL_PATH"] = "istioctl-not-installed"

    result = mb.run("install")

    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "install failed: cannot run istioctl: 'istioctl-not-installed' is not an executable on PATH"
    )
    assert mb.apps.list_namespaced_deployment("istio-system").items == []


def test_an_istioctl_that_fails_reports_its_error_line(make_meshbot: Any) -> None:
    mb = make_meshbot("article-bare")
    # The stand-in forwards to the playground; pointed nowhere, it fails as istioctl does.
    mb.env["PLAYGROUND_URL"] = "http://127.0.0.1:9"

    result = mb.run("install")

    assert result.exit_code == 1
    assert (
        "`istioctl install --set profile=demo -y` failed: istioctl install exited with code 1: Error: "
        in (result.stderr)
    )
    assert mb.last_event().outcome == "error"


def test_clear_all_halts_a_fault_whose_undo_failed_too(two_routes: Meshbot) -> None:
    mb = two_routes
    before = mb.virtual_services()
    mb.pg.hooks.fail_next(r"/virtualservices/web-svc$", 1, code=500, method="PATCH")
    mb.pg.hooks.fail_next(r"/virtualservices/emojivoto$", 1, code=503, method="GET")
    assert mb.run(ABORT).exit_code == 1
    (experiment,) = mb.experiments().values()
    assert experiment.state == "failed"

    # `fault list` shows only running experiments, but the big red button must reach this one.
    reply = mb.ok("fault clear all")
    assert f"✔ {experiment.id} on web-svc.{NS} cleared (1 fault route(s) removed from " in reply
    assert mb.virtual_services() == before
    assert mb.experiment(experiment.id).state == "failed"


def test_clear_all_removes_faults_the_store_has_no_record_of(meshbot: Meshbot) -> None:
    experiment_id = meshbot.inject_fault(f"fault delay 2s web-svc.{NS} for 30m")
    # The database is lost: meshbot starts again on an empty one, the fault still in the cluster.
    meshbot.env["MESHBOT_DATABASE_URL"] = f"sqlite:///{meshbot.tmp / 'fresh.db'}"
    assert meshbot.cli("migrate").exit_code == 0
    # `fault list` shows what the cluster carries, not only what the store remembers.
    listed = meshbot.ok("fault list")
    assert (
        f"• {experiment_id} in {NS} (VirtualService meshbot-web-svc): in the cluster with no live " in listed
    )

    reply = meshbot.ok("fault clear all")
    assert f"✔ {experiment_id} on {NS} cleared (1 fault route(s) removed from " in reply
    assert "it had no live record in meshbot's store" in reply
    assert "meshbot-web-svc" not in meshbot.virtual_services()
    assert "No active faults: nothing to clear." in meshbot.ok("fault clear all")
