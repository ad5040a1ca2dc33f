"""Crashes: the leader dies with 20 experiments active; the follower takes the Lease over and ends
every fault once, on time after takeover, none twice; the audit chain verifies."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

from core.store import AuditQuery, query_events
from tests.lifecycle.conftest import Env, wait_for
from tests.resilience.conftest import assert_chain_intact
from tests.resilience.figures import attempt

SERVICES = ("web-svc", "emoji-svc", "voting-svc")
ACTIVE = 20


def _ending_rows(env: Env) -> Counter[str]:
    """Audit rows of the automatic end paths, per experiment."""
    with env.store.read() as session:
        rows = query_events(session=session, query=AuditQuery(limit=1000)).events
    return Counter(r.experiment_id for r in rows if r.verb in ("expire", "reap") and r.experiment_id)


def test_the_leader_dies_with_20_active_and_the_follower_ends_each_once_on_time(env: Env) -> None:
    first = env.lifecycle(leader_election=True, identity="replica-a")
    assert first.wait_until_leader(3.0)
    second = env.lifecycle(leader_election=True, identity="replica-b")
    # Half due before the lease can lapse (so overdue at takeover), half after it.
    ids = [
        env.start_fault(SERVICES[n % len(SERVICES)], duration="2s" if n % 2 else "5s") for n in range(ACTIVE)
    ]
    wait_for(lambda: all(env.armed(first, i) for i in ids), 5.0, "the leader to arm every expiry")

    first.abandon()  # SIGKILL: no release, no step-down; the lease lapses by itself
    assert second.wait_until_leader(5.0), "taken over within the lease duration (and a retry)"
    took_over = datetime.now(UTC)

    for experiment_id in ids:
        with attempt("crashes"):
            expires = env.experiment(experiment_id).expires_at
            assert expires is not None
            due = max(expires, took_over)
            remaining = (due - datetime.now(UTC)).total_seconds() + 2.0
            wait_for(
                lambda i=experiment_id: not env.in_cluster(i), max(remaining, 0.1), f"{experiment_id} gone"
            )
            env.wait_state(experiment_id, "ended", timeout=5.0)
    with attempt("crashes"):
        time.sleep(0.5)  # a second end of any of them would be recorded by now; none may
        ended = _ending_rows(env)
        with env.store.read() as session:
            rows = query_events(session=session, query=AuditQuery(limit=1000)).events
        twice = [i for i in ids if ended[i] != 1]
        assert not twice, "\n".join(
            f"{r.id} {r.actor_user_id} {r.verb} {r.outcome} {r.message}"
            for r in rows
            if r.experiment_id in twice[:2]
        )
        assert {env.experiment(i).end_reason for i in ids} <= {"expired", "reverted after restart"}
        assert_chain_intact(env.store)
