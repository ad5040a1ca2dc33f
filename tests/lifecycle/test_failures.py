"""The API server failing while a fault is reverted: retried with back-off; escalated (failed,
told, listed) when it goes on failing; retried until the fault is gone."""

from __future__ import annotations

from core.store import AuditQuery, list_failed, query_events

from .conftest import Env, wait_for

VIRTUAL_SERVICES = r"/apis/networking\.istio\.io/v1/namespaces/emojivoto-istio/virtualservices"


def test_revert_retries_while_the_api_server_fails_then_succeeds(env: Env) -> None:
    lifecycle = env.lifecycle(revert_escalate_after=5)
    experiment_id = env.start_fault("web-svc", "1s")
    wait_for(lambda: env.armed(lifecycle, experiment_id), 2.0, "the expiry armed")
    # The next three calls about VirtualServices — the revert's — fail.
    env.pg.hooks.fail_next(VIRTUAL_SERVICES, 3, code=503)

    env.wait_gone(experiment_id, within=2.0)
    ended = env.wait_state(experiment_id, "ended")
    assert ended.end_reason == "expired"
    with env.store.read() as session:
        (event,) = query_events(session=session, query=AuditQuery(verb="expire")).events
    assert event.outcome == "ok" and "(4 attempts)" in event.message
    env.flush(lifecycle)
    assert not env.notifier.matching(lambda n: "🚨" in n.text), "recovered before escalation"


def test_a_fault_that_cannot_be_removed_is_escalated_and_retried_until_it_is(env: Env) -> None:
    lifecycle = env.lifecycle(revert_escalate_after=3)
    experiment_id = env.start_fault("web-svc", "1s")
    wait_for(lambda: env.armed(lifecycle, experiment_id), 2.0, "the expiry armed")
    env.pg.hooks.fail_next(VIRTUAL_SERVICES, 10_000, code=500)

    failed = env.wait_state(experiment_id, "failed", timeout=5.0)
    assert failed.detail and "could not remove the fault after 3 attempts" in failed.detail
    assert f"fault clear {experiment_id}" in failed.detail
    alarm = env.notifier.wait_for(lambda n: n.experiment_id == experiment_id and "🚨" in n.text)
    assert alarm.final, "the parent message shows it too"
    with env.store.read() as session:
        assert [e.id for e in list_failed(session=session, namespace="emojivoto-istio")] == [experiment_id]
        (event,) = query_events(session=session, query=AuditQuery(verb="expire", outcome="error")).events
    assert event.experiment_id == experiment_id
    assert env.in_cluster(experiment_id), "still there while the API server fails"

    env.pg.hooks.clear_faults()  # the API server recovers

    wait_for(lambda: not env.in_cluster(experiment_id), 3.0, "the retries to remove the fault")
    done = env.notifier.wait_for(lambda n: n.experiment_id == experiment_id and "✅" in n.text)
    assert done.final
    assert env.experiment(experiment_id).state == "failed", "the record of what went wrong stays"


def test_status_shows_a_fault_whose_revert_failed_while_the_cluster_still_carries_it(env: Env) -> None:
    lifecycle = env.lifecycle(revert_escalate_after=2)
    experiment_id = env.start_fault("web-svc", "1s")
    wait_for(lambda: env.armed(lifecycle, experiment_id), 2.0, "the expiry armed")
    # Only the writes fail: reading (status, the reaper's sweep) still works, as with an
    # admission webhook that rejects every change.
    for write in ("PATCH", "DELETE"):  # meshbot's own VirtualService goes by DELETE
        env.pg.hooks.fail_next(VIRTUAL_SERVICES, 10_000, code=500, method=write)
    env.wait_state(experiment_id, "failed", timeout=5.0)

    shown = env.run("status emojivoto-istio").text
    assert "*Needs a person*" in shown
    assert f"✖ {experiment_id} abort on web-svc.emojivoto-istio: revert failed, still in the cluster" in shown
    assert f"`fault clear {experiment_id}`" in shown

    env.pg.hooks.clear_faults()
    wait_for(lambda: not env.in_cluster(experiment_id), 3.0, "the retries to remove the fault")
    assert experiment_id not in env.run("status emojivoto-istio").text
