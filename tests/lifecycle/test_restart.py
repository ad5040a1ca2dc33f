"""A new leader reconciles: what expired while none ran is reverted at once (``reverted after
restart``), what is still running is re-armed, half-ended experiments are finished."""

from __future__ import annotations

from datetime import UTC, datetime

from core.store import EndReason, begin_ending
from domain.ending import SCHEDULER

from .conftest import Env, wait_for


def _expired(env: Env, experiment_id: str) -> bool:
    expires = env.experiment(experiment_id).expires_at
    return expires is not None and expires <= datetime.now(UTC)


def test_restart_reverts_the_expired_and_re_arms_the_pending(env: Env) -> None:
    before = env.lifecycle()
    missed = env.start_fault("web-svc", "1s")
    pending = env.start_fault("emoji-svc", "3s")
    before.stop()  # the service goes down with both faults in place

    wait_for(lambda: _expired(env, missed), 3.0, "the first fault to expire while the service is down")
    assert env.in_cluster(missed), "nobody removes it while the service is down"

    env.lifecycle()
    env.wait_gone(missed, within=2.0)
    reverted = env.wait_state(missed, "ended")
    assert reverted.end_reason == EndReason.REVERTED_AFTER_RESTART
    assert env.in_cluster(pending), "a fault that has not expired stays"

    env.wait_gone(pending, within=2.0)
    ended = env.wait_state(pending, "ended")
    assert ended.end_reason == EndReason.EXPIRED
    assert ended.ended_at is not None and ended.expires_at is not None and ended.ended_at >= ended.expires_at


def test_an_experiment_left_half_ended_is_finished_by_the_next_leader(env: Env) -> None:
    experiment_id = env.start_fault("web-svc", "30s")
    # A process claimed it for reverting (a user's clear, an expiry) and died before clearing.
    with env.store.write() as session:
        begin_ending(session=session, experiment_id=experiment_id, reason=EndReason.CLEARED, by=SCHEDULER)
    assert env.in_cluster(experiment_id)

    env.lifecycle()
    wait_for(lambda: not env.in_cluster(experiment_id), 3.0, "the half-ended fault removed")
    ended = env.wait_state(experiment_id, "ended")
    assert ended.end_reason == EndReason.CLEARED, "the reason given when ending began is kept"
