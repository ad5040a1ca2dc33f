"""Outages with recovery deadlines: once the API server takes writes again, every overdue fault is
gone within 2 s, whatever failed meanwhile."""

from __future__ import annotations

import time

from tests.lifecycle.conftest import Env, wait_for
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
