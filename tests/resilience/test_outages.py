"""Outages with recovery deadlines: once the API server takes writes again, every overdue fault is
gone within 2 s, whatever failed meanwhile."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from core.store import Experiment
from mesh.virtualservices import list_marked_faults
from tests.lifecycle.conftest import NS, Env, wait_for
from tests.resilience.conftest import assert_chain_intact
from tests.resilience.figures import attempt

VS_WRITES = r"/virtualservices"


def test_a_partial_outage_ends_within_2s_of_recovery(env: Env) -> None:
    """Only VirtualService writes fail (Istio's webhook down) while the Lease stays healthy: no
    step-down, no reconcile — the expiry's own retries must find the API back within the deadline.
    Production back-off (30 s ceiling) is kept, as in a real deployment."""
    lifecycle = env.lifecycle(revert_retry_initial_seconds=1.0, revert_retry_max_seconds=30.0)
    ids = [env.start_fault(service, duration="1s") for service in ("web-svc", "emoji-svc")]
    with attempt("outages"):
        for method in ("PATCH", "PUT", "POST", "DELETE"):
            env.pg.hooks.fail_next(VS_WRITES, 10_000, code=500, method=method)
        # Long enough for the back-off to have grown past several seconds.
        time.sleep(9)
        assert all(env.in_cluster(i) for i in ids)
        env.pg.hooks.clear_faults()
        recovered = time.monotonic()
        for experiment_id in ids:
            wait_for(lambda i=experiment_id: not env.in_cluster(i), 2.0 + 0.5, f"{experiment_id} gone")
        assert time.monotonic() - recovered <= 2.5
        for experiment_id in ids:
            # Escalated to a person after 3 attempts (failed), then cleared: no longer live either way.
            wait_for(
                lambda i=experiment_id: env.experiment(i).state not in ("active", "ending"),
                5.0,
                f"{experiment_id} no longer live in the store",
            )
        env.flush(lifecycle)
        assert_chain_intact(env.store)


def _the_only_experiment(env: Env) -> Experiment:
    with env.store.read() as session:
        (experiment,) = session.scalars(select(Experiment))
    return experiment


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT"])
def test_a_write_that_lands_after_the_clients_timeout_is_listed_and_ends_on_expiry(
    env: Env, method: str
) -> None:
    """The API server takes the write but answers after the client gave up: meshbot must not
    believe nothing was applied. The fault shows in `fault list` and is gone within 2 s of expiry."""
    env.kube.timeout = 1.0
    # The default sweep interval: the leader sweeps again when a fault only the reaper ends is due.
    lifecycle = env.lifecycle(lifecycle_reaper_seconds=15)
    with attempt("outages"):
        env.pg.hooks.hang_next(VS_WRITES, 1, seconds=1.5, method=method)
        reply = env.run(f"fault abort 500 50% web-svc.{NS} for 3s")
        experiment = _the_only_experiment(env)
        # Whatever the reply said, once the late write lands the cluster and `fault list` agree.
        time.sleep(1.0)  # a hung write lands now (the first write of the three methods that hung)
        if env.in_cluster(experiment.id):
            listed = env.run("fault list").text
            assert experiment.id in listed, (reply.text, listed)
            # A failed record has no expiry of its own: the cluster's annotation is what the reaper reads.
            (mark,) = [m for m in list_marked_faults(env.kube) if m.experiment_id == experiment.id]
            expires = mark.expires
            deadline = (expires - datetime.now(UTC)).total_seconds() + 2.0
            wait_for(lambda: not env.in_cluster(experiment.id), max(deadline, 0.1), "the late fault gone")
        env.flush(lifecycle)
        assert_chain_intact(env.store)


def test_a_hung_api_during_expiry_recovers_and_every_overdue_fault_is_gone_within_2s(env: Env) -> None:
    lifecycle = env.lifecycle()
    ids = [env.start_fault(service, duration="1s") for service in ("web-svc", "emoji-svc", "voting-svc")]
    with attempt("outages"):
        for method in ("PATCH", "PUT", "DELETE"):
            env.pg.hooks.hang_next(VS_WRITES, 10_000, seconds=3.0, method=method)
        time.sleep(3)
        env.pg.hooks.clear_faults()
        recovered = time.monotonic()
        for experiment_id in ids:
            wait_for(lambda i=experiment_id: not env.in_cluster(i), 2.0 + 0.5, f"{experiment_id} gone")
        assert time.monotonic() - recovered <= 2.5
        env.flush(lifecycle)
        assert_chain_intact(env.store)
