"""Experiments: a fault's life from pending to ended, with exactly what it changed."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from core.store import (
    Actor,
    EndReason,
    Experiment,
    ExperimentKind,
    ExperimentNotFound,
    InvalidTransition,
    InvalidValue,
    Store,
    VirtualServiceChange,
    begin_ending,
    create_experiment,
    end_experiment,
    extend_experiment,
    get_experiment,
    list_active,
    list_expired_active,
    mark_active,
    mark_failed,
    plan_experiment,
    set_thread,
)

from .helpers import ALICE, BOB, NOW

ROUTE = {
    "match": [{"headers": {"x-chaos": {"exact": "on"}}}],
    "fault": {"delay": {"fixedDelay": "2s", "percentage": {"value": 50.0}}},
    "route": [{"destination": {"host": "web-svc"}}],
}
BEFORE = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "web-svc", "namespace": "shop", "resourceVersion": "812"},
    "spec": {"hosts": ["web-svc"], "http": [{"route": [{"destination": {"host": "web-svc"}}]}]},
}
CHANGE = VirtualServiceChange(namespace="shop", name="web-svc", inserted_routes=[ROUTE], before=BEFORE)


def new_experiment(
    store: Store, service: str = "web-svc", namespace: str = "shop", **overrides: object
) -> str:
    values: dict[str, object] = {
        "kind": ExperimentKind.DELAY,
        "parameters": {"delay_ms": 2000, "percentage": 50, "header_match": {"x-chaos": "on"}},
        "cluster": "prod",
        "namespace": namespace,
        "service": service,
        "duration": timedelta(minutes=10),
        "created_by": ALICE,
        "channel": "C0PROD",
        "thread_ts": "1732700000.000100",
        "now": NOW,
    }
    values.update(overrides)
    with store.write() as session:
        return create_experiment(session=session, **values).id


def activate(store: Store, experiment_id: str, at: object = NOW) -> Experiment:
    with store.write() as session:
        return mark_active(session=session, experiment_id=experiment_id, changes=[CHANGE], now=at)


def fetch(store: Store, experiment_id: str) -> Experiment:
    with store.read() as session:
        return get_experiment(session=session, experiment_id=experiment_id)


def test_a_new_experiment_is_pending_with_a_short_typeable_id(store: Store) -> None:
    experiment_id = new_experiment(store)
    assert re.fullmatch(r"exp-[0-9a-f]{4}", experiment_id)
    experiment = fetch(store, experiment_id)
    assert experiment.state == "pending"
    assert experiment.parameters == {
        "delay_ms": 2000,
        "percentage": 50,
        "header_match": {"x-chaos": "on"},
    }
    assert (experiment.cluster, experiment.namespace, experiment.service) == (
        "prod",
        "shop",
        "web-svc",
    )
    assert (experiment.created_by_team, experiment.created_by_user) == ("T0001", "U0ALICE")
    assert (experiment.channel, experiment.thread_ts) == ("C0PROD", "1732700000.000100")
    assert experiment.created_at == NOW
    assert experiment.started_at is None and experiment.expires_at is None


def test_ids_stay_unique(store: Store) -> None:
    created = {new_experiment(store) for _ in range(60)}
    assert len(created) == 60


def test_activation_records_the_exact_change_and_starts_the_clock(store: Store) -> None:
    experiment_id = new_experiment(store)
    activate(store, experiment_id, at=NOW + timedelta(seconds=5))
    experiment = fetch(store, experiment_id)
    assert experiment.state == "active"
    assert experiment.virtual_services == [
        {"namespace": "shop", "name": "web-svc", "inserted_routes": [ROUTE], "before": BEFORE}
    ]
    assert experiment.started_at == NOW + timedelta(seconds=5)
    assert experiment.expires_at == NOW + timedelta(minutes=10, seconds=5)


def test_planned_changes_are_kept_before_the_cluster_is_touched(store: Store) -> None:
    experiment_id = new_experiment(store)
    with store.write() as session:
        plan_experiment(session=session, experiment_id=experiment_id, changes=[CHANGE])
    planned = fetch(store, experiment_id)
    assert planned.state == "pending"
    assert planned.virtual_services[0]["before"] == BEFORE
    activate(store, experiment_id)
    with pytest.raises(InvalidTransition, match="is active; cannot plan it"), store.write() as session:
        plan_experiment(session=session, experiment_id=experiment_id, changes=[CHANGE])


def test_the_chat_thread_is_kept_for_later_events(store: Store) -> None:
    experiment_id = new_experiment(store, thread_ts=None)
    assert fetch(store, experiment_id).thread_ts is None
    with store.write() as session:
        set_thread(session=session, experiment_id=experiment_id, thread_ts="1732700000.000200")
    assert fetch(store, experiment_id).thread_ts == "1732700000.000200"
    with pytest.raises(ExperimentNotFound), store.write() as session:
        set_thread(session=session, experiment_id="exp-none", thread_ts="1")


def test_extend_moves_the_expiry(store: Store) -> None:
    experiment_id = new_experiment(store)
    activate(store, experiment_id)
    with store.write() as session:
        extend_experiment(session=session, experiment_id=experiment_id, by=timedelta(minutes=5))
    assert fetch(store, experiment_id).expires_at == NOW + timedelta(minutes=15)


def test_ending_takes_two_steps_and_keeps_reason_and_who(store: Store) -> None:
    experiment_id = new_experiment(store)
    activate(store, experiment_id)
    with store.write() as session:
        begin_ending(session=session, experiment_id=experiment_id, reason=EndReason.CLEARED, by=BOB)
    assert fetch(store, experiment_id).state == "ending"
    with store.write() as session:
        end_experiment(session=session, experiment_id=experiment_id, now=NOW + timedelta(minutes=3))
    experiment = fetch(store, experiment_id)
    assert experiment.state == "ended"
    assert experiment.end_reason == "cleared by user"
    assert experiment.ended_by_user == "U0BOB"
    assert experiment.ended_at == NOW + timedelta(minutes=3)


@pytest.mark.parametrize("reason", list(EndReason))
def test_every_end_reason_can_be_recorded(store: Store, reason: EndReason) -> None:
    experiment_id = new_experiment(store)
    activate(store, experiment_id)
    with store.write() as session:
        end_experiment(session=session, experiment_id=experiment_id, reason=reason, by=Actor.scheduler())
    assert fetch(store, experiment_id).end_reason == reason.value


def test_only_one_of_two_racing_enders_wins(store: Store) -> None:
    experiment_id = new_experiment(store)
    activate(store, experiment_id)
    with store.write() as session:
        begin_ending(session=session, experiment_id=experiment_id, reason=EndReason.EXPIRED)
    with (
        pytest.raises(InvalidTransition, match=f"experiment {experiment_id} is ending; cannot end it"),
        store.write() as session,
    ):
        begin_ending(session=session, experiment_id=experiment_id, reason=EndReason.CLEARED, by=BOB)
    assert fetch(store, experiment_id).end_reason == "expired"


def test_failure_keeps_what_went_wrong(store: Store) -> None:
    experiment_id = new_experiment(store)
    with store.write() as session:
        mark_failed(session=session, experiment_id=experiment_id, detail="409 Conflict on web-svc", now=NOW)
    experiment = fetch(store, experiment_id)
    assert (experiment.state, experiment.end_reason) == ("failed", "failed")
    assert experiment.detail == "409 Conflict on web-svc"
    assert experiment.ended_at == NOW


@pytest.mark.parametrize(
    ("action", "state_needed"),
    [("extend", "active"), ("begin_ending", "active"), ("end", "active"), ("activate", "pending")],
)
def test_transitions_from_the_wrong_state_are_refused(store: Store, action: str, state_needed: str) -> None:
    experiment_id = new_experiment(store)
    if state_needed == "pending":
        activate(store, experiment_id)
    with pytest.raises(InvalidTransition), store.write() as session:
        if action == "extend":
            extend_experiment(session=session, experiment_id=experiment_id, by=timedelta(minutes=1))
        elif action == "begin_ending":
            begin_ending(session=session, experiment_id=experiment_id, reason=EndReason.HALTED)
        elif action == "end":
            end_experiment(session=session, experiment_id=experiment_id, reason=EndReason.HALTED)
        else:
            mark_active(session=session, experiment_id=experiment_id, changes=[CHANGE])


def test_unknown_experiments_and_bad_values_are_refused(store: Store) -> None:
    with pytest.raises(ExperimentNotFound, match="no experiment exp-zzzz"), store.read() as session:
        get_experiment(session=session, experiment_id="exp-zzzz")
    with pytest.raises(InvalidValue, match="positive duration"):
        new_experiment(store, duration=timedelta(0))


def test_list_active_shows_live_faults_by_namespace_and_service(store: Store) -> None:
    web = new_experiment(store)
    cart = new_experiment(store, service="cart")
    other_ns = new_experiment(store, namespace="pay")
    pending = new_experiment(store)
    ended = new_experiment(store)
    for experiment_id in (web, cart, other_ns, ended):
        activate(store, experiment_id)
    with store.write() as session:
        begin_ending(session=session, experiment_id=cart, reason=EndReason.CLEARED)
        end_experiment(session=session, experiment_id=ended, reason=EndReason.CLEARED)

    def active(**where: str) -> set[str]:
        with store.read() as session:
            return {e.id for e in list_active(session=session, **where)}

    assert active() == {web, cart, other_ns}
    assert active(namespace="shop") == {web, cart}
    assert active(namespace="shop", service="web-svc") == {web}
    assert active(cluster="staging") == set()
    assert pending not in active()


def test_the_reaper_sees_only_active_experiments_past_expiry(store: Store) -> None:
    overdue = new_experiment(store, duration=timedelta(minutes=1))
    running = new_experiment(store, duration=timedelta(hours=1))
    already_ending = new_experiment(store, duration=timedelta(minutes=1))
    for experiment_id in (overdue, running, already_ending):
        activate(store, experiment_id)
    with store.write() as session:
        begin_ending(session=session, experiment_id=already_ending, reason=EndReason.EXPIRED)
    with store.read() as session:
        due = list_expired_active(session=session, now=NOW + timedelta(minutes=2))
    assert [e.id for e in due] == [overdue]
