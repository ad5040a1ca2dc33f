"""Faults end on time: armed from the store, reverted by the scheduler, recorded, told; extensions
re-arm the expiry and the reminders."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from bot.lifecycle import RecordingNotifier
from bot.lifecycle.notify import EXTEND_ACTION, STOP_ACTION, Button
from core.store import AuditQuery, Experiment, query_events

from .conftest import Env, wait_for


def test_faults_are_removed_on_time_and_the_experiments_ended(env: Env) -> None:
    lifecycle = env.lifecycle()
    first = env.start_fault("web-svc", "1s")
    second = env.start_fault("emoji-svc", "2s")
    assert env.in_cluster(first) and env.in_cluster(second)

    for experiment_id in (first, second):
        late = env.wait_gone(experiment_id, within=2.0)
        assert late < 2.0
        ended = env.wait_state(experiment_id, "ended")
        assert ended.end_reason == "expired"
        assert ended.ended_by_user == "meshbot:scheduler"
        assert ended.ended_at is not None and ended.expires_at is not None
        assert ended.ended_at >= ended.expires_at, "never before its time"

    with env.store.read() as session:
        events = query_events(session=session, query=AuditQuery(verb="expire")).events
    assert {e.experiment_id for e in events} == {first, second}
    assert {(e.source, e.actor_user_id, e.outcome) for e in events} == {
        ("scheduler", "meshbot:scheduler", "ok")
    }
    env.flush(lifecycle)
    finals = env.notifier.matching(lambda n: n.final and n.kind == "experiment")
    assert {n.experiment_id for n in finals} == {first, second}
    assert all("expired" in n.text for n in finals)


def test_extending_re_arms_the_expiry_and_the_reminder(env: Env) -> None:
    lifecycle = env.lifecycle(reminder_lead_seconds=1)
    experiment_id = env.start_fault("web-svc", "2s")
    # Let the leader arm the original expiry first, so re-arming is what the test sees.
    wait_for(lambda: env.armed(lifecycle, experiment_id), 2.0, "the expiry armed")
    reply = env.run(f"fault extend {experiment_id} 1s")
    assert reply.ok, reply.text
    extended = env.experiment(experiment_id).expires_at
    assert extended is not None

    env.wait_gone(experiment_id, within=2.0)
    ended = env.wait_state(experiment_id, "ended")
    assert ended.ended_at is not None and ended.ended_at >= extended, "reverted at the extended time"
    env.flush(lifecycle)
    reminders = env.notifier.matching(lambda n: n.experiment_id == experiment_id and "ends in" in n.text)
    assert reminders, "a reminder before the end"
    assert "ends in 1s" in reminders[-1].text, "the reminder moved with the expiry"
    assert f"fault extend {experiment_id}" in reminders[-1].text
    assert [(b.text, b.action_id, b.value) for b in reminders[-1].buttons] == [
        ("Extend 10 min", EXTEND_ACTION, experiment_id),
        ("Stop now", STOP_ACTION, experiment_id),
    ]


def test_long_experiments_get_nudged(env: Env) -> None:
    env.lifecycle(nudge_every_seconds=1)
    experiment_id = env.start_fault("web-svc", "3s")
    note = env.notifier.wait_for(
        lambda n: n.experiment_id == experiment_id and "has been running for" in n.text, timeout=3.0
    )
    assert "has been running for 1s; it ends in 2s" in note.text and not note.final


class _StuckSlack(RecordingNotifier):
    """A notifier that hangs on every message until released, as a rate-limited Slack may."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def experiment_event(
        self, experiment: Experiment, text: str, *, final: bool = False, buttons: Sequence[Button] = ()
    ) -> None:
        self.release.wait(10)
        super().experiment_event(experiment, text, final=final, buttons=buttons)


def test_a_hanging_notifier_does_not_delay_reverts(env: Env) -> None:
    stuck = _StuckSlack()
    env.notifier = stuck
    env.lifecycle(lifecycle_workers=2)
    ids = [env.start_fault(service, "1s") for service in ("web-svc", "emoji-svc", "voting-svc")]

    for experiment_id in ids:
        env.wait_gone(experiment_id, within=2.0)
    stuck.release.set()
    for experiment_id in ids:
        stuck.wait_for(lambda n, i=experiment_id: n.experiment_id == i and n.final)  # type: ignore[misc]
