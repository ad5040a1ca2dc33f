"""One leader among replicas, on a coordination.k8s.io/v1 Lease: acquire, renew, lose, release,
and a follower that takes over when the leader dies and reverts its faults on time."""

from __future__ import annotations

import threading
import time

from kubernetes.client import V1LeaseSpec

from mesh.kube import Kube
from mesh.lease import LeaseElector

from .conftest import Env, wait_for

LEASE = "meshbot-lifecycle"


def _elector(kube: Kube, identity: str, **kwargs: object) -> LeaseElector:
    options: dict[str, object] = {"lease_duration": 1.0, "renew_deadline": 0.8, "retry_period": 0.1}
    options.update(kwargs)
    return LeaseElector(kube, namespace="default", name=LEASE, identity=identity, **options)  # type: ignore[arg-type]


def _lease(env: Env) -> V1LeaseSpec:
    spec = env.kube.coordination.read_namespaced_lease(LEASE, "default").spec
    assert spec is not None
    return spec


def test_the_lease_names_one_holder_and_changes_hands_only_when_it_lapses_or_is_released(env: Env) -> None:
    a, b = _elector(env.kube, "a"), _elector(env.kube, "b")
    a.tick()
    b.tick()
    assert (a.is_leader, b.is_leader) == (True, False)
    spec = _lease(env)
    assert (spec.holder_identity, spec.lease_duration_seconds, spec.lease_transitions) == ("a", 1, 0)
    first_renew = spec.renew_time
    assert first_renew is not None

    a.tick()  # renewal
    renewed = _lease(env).renew_time
    assert renewed is not None and renewed > first_renew
    b.tick()
    assert not b.is_leader, "a live holder keeps it"

    time.sleep(1.2)  # a stops renewing (say it hangs) for longer than the lease duration
    b.tick()
    assert b.is_leader
    spec = _lease(env)
    assert (spec.holder_identity, spec.lease_transitions) == ("b", 1)

    a.tick()  # a wakes up: someone else holds the lease, so a steps down at once
    assert not a.is_leader

    b.stop(release=True)
    assert _lease(env).holder_identity is None
    a.tick()
    assert a.is_leader, "a released lease is taken at once"
    assert _lease(env).lease_transitions == 2


def test_of_replicas_racing_for_the_lease_exactly_one_wins(env: Env) -> None:
    electors = [_elector(env.kube, f"r{n}") for n in range(6)]
    go = threading.Barrier(len(electors))

    def race(elector: LeaseElector) -> None:
        go.wait()
        elector.tick()

    threads = [threading.Thread(target=race, args=(e,)) for e in electors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [e.identity for e in electors if e.is_leader]
    assert len(winners) == 1, "the create (or the replace) of all but one got 409"
    assert _lease(env).holder_identity == winners[0]


def test_a_leader_that_cannot_renew_steps_down_before_its_lease_lapses(env: Env) -> None:
    stopped = threading.Event()
    a = _elector(env.kube, "a", on_stopped=stopped.set)
    a.tick()
    assert a.is_leader
    env.pg.hooks.fail_next(r"/leases/", 1000, code=503)
    a.start()
    assert stopped.wait(2.0)
    assert not a.is_leader
    a.abandon()


def test_the_follower_takes_over_when_the_leader_dies_and_reverts_its_fault_on_time(env: Env) -> None:
    first = env.lifecycle(leader_election=True, identity="replica-a")
    assert first.wait_until_leader(2.0)
    second = env.lifecycle(leader_election=True, identity="replica-b")
    experiment_id = env.start_fault("web-svc", "3s")
    wait_for(lambda: env.armed(first, experiment_id), 2.0, "the leader to arm the expiry")
    assert not second.is_leader

    first.abandon()  # the leader's process dies: no release, the lease lapses by itself

    assert second.wait_until_leader(3.0), "taken over within the lease duration (and a retry)"
    env.wait_gone(experiment_id, within=2.0)
    ended = env.wait_state(experiment_id, "ended")
    assert ended.end_reason == "expired" and ended.ended_by_user == "meshbot:scheduler"
    spec = _lease(env)
    assert (spec.holder_identity, spec.lease_transitions) == ("replica-b", 1)
