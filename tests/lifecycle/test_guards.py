"""Guards without telemetry to read: Prometheus unreachable while guarding (the policy's
stop/continue), and guards re-armed by a new leader from the store."""

from __future__ import annotations

import socket

from bot.pipeline import Pipeline
from core.policy import FaultLimits, GuardPolicy, Policy
from mesh.prometheus import Prometheus

from .conftest import ALICE_OPERATES, NS, Env, wait_for

GUARD = 'guard="error_rate(web-svc) > 20%"'


def _dead_port() -> int:
    # Bound and closed: nothing listens there, so a connection is refused at once.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _guarded(env: Env, guards: GuardPolicy) -> None:
    env.policy = Policy(
        faults=FaultLimits(max_concurrent_per_namespace=50), roles=ALICE_OPERATES, guards=guards
    )
    prometheus = Prometheus(f"http://127.0.0.1:{_dead_port()}", timeout=0.5)
    env._pipeline = Pipeline(store=env.store, kube=env.kube, policy=env.policy, prometheus=prometheus)


def test_an_unreachable_prometheus_stops_a_guarded_fault_by_default(env: Env) -> None:
    _guarded(env, GuardPolicy(unavailable_after=2))
    env.lifecycle(guard_interval=0.1)
    experiment_id = env.start_fault(duration="5m", kind=f"abort 500 40% {GUARD}")
    ended = env.wait_state(experiment_id, "ended", timeout=10)
    assert ended.end_reason == "guard tripped"
    assert not env.in_cluster(experiment_id)
    note = env.notifier.wait_for(lambda n: n.experiment_id == experiment_id and n.final)
    assert "could not be checked 2 times in a row" in note.text
    assert "cannot be reached" in note.text


def test_the_policy_may_let_an_unwatched_fault_run_on(env: Env) -> None:
    _guarded(env, GuardPolicy(unavailable_after=2, on_unavailable="continue"))
    lifecycle = env.lifecycle(guard_interval=0.1)
    experiment_id = env.start_fault(duration="3s", kind=f"abort 500 40% {GUARD}")
    note = env.notifier.wait_for(lambda n: n.experiment_id == experiment_id and "cannot be checked" in n.text)
    assert "run on unguarded" in note.text
    ended = env.wait_state(experiment_id, "ended", timeout=10)
    assert ended.end_reason == "expired"
    card = env.notifier.wait_for(lambda n: n.experiment_id == experiment_id and "Report card" in n.text)
    assert "Not measured: Prometheus at" in card.text
    env.flush(lifecycle)
    assert len(env.notifier.matching(lambda n: "cannot be checked" in n.text)) == 1


def test_a_new_leader_re_arms_the_guards_from_the_store(env: Env) -> None:
    _guarded(env, GuardPolicy(namespaces={NS: ["error_rate > 50%"]}))
    first = env.lifecycle(guard_interval=60)
    reply = env.run(f"fault abort 500 40% web-svc.{NS} for 5m")
    assert "Guards: error_rate > 50%" in reply.text
    experiment_id = str(reply.experiment_id)
    wait_for(lambda: first.rt.has_job(f"guard:{experiment_id}"), 5, "the guard armed")
    first.stop()
    second = env.lifecycle(guard_interval=60)
    wait_for(lambda: second.rt.has_job(f"guard:{experiment_id}"), 5, "the guard re-armed")
    assert env.experiment(experiment_id).guards == [
        {
            "metric": "error_rate",
            "op": ">",
            "threshold": 0.5,
            "service": None,
            "namespace": None,
            "window": "1m",
        }
    ]
