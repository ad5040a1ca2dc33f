"""The experiment repository: a fault's life from pending to ended, with what it changed."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from core.store.errors import ExperimentNotFound, InvalidTransition, InvalidValue
from core.store.ids import new_short_id
from core.store.models import Experiment
from core.values import Actor, EndReason, ExperimentKind, ExperimentState

_LIVE = (ExperimentState.ACTIVE, ExperimentState.ENDING)
# A start takes seconds; one still pending after this died between its record and the cluster
# (the reaper takes its fault, if any, from the cluster) and no longer holds a place.
PENDING_HOLDS_FOR = timedelta(minutes=10)
# The first key of PostgreSQL's two-key advisory locks that guard a namespace's places; the
# two-key space is apart from the one-key space the migration lock uses.
_NAMESPACE_LOCK_CLASS = 0x6D65_7368  # "mesh"


@dataclass(frozen=True)
class VirtualServiceChange:
    """What one VirtualService looked like before, and the routes meshbot inserted into it."""

    namespace: str
    name: str
    inserted_routes: list[dict[str, Any]]
    before: dict[str, Any]


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC)


def create_experiment(
    *,
    session: Session,
    kind: ExperimentKind,
    parameters: dict[str, Any],
    cluster: str,
    namespace: str,
    service: str,
    duration: timedelta,
    created_by: Actor,
    channel: str | None = None,
    thread_ts: str | None = None,
    now: datetime | None = None,
    guards: list[dict[str, Any]] | None = None,
) -> Experiment:
    """Record a fault about to be applied (pending); the clock starts when it is marked active."""
    if duration <= timedelta(0):
        raise InvalidValue(f"an experiment needs a positive duration, not {duration}")
    experiment = Experiment(
        id=new_short_id(session, "exp", Experiment.id),
        kind=ExperimentKind(kind).value,
        parameters=dict(parameters),
        cluster=cluster,
        namespace=namespace,
        service=service,
        virtual_services=[],
        duration_seconds=int(duration.total_seconds()),
        created_by_team=created_by.team_id,
        created_by_user=created_by.user_id,
        created_by_name=created_by.display_name,
        channel=channel,
        thread_ts=thread_ts,
        state=ExperimentState.PENDING.value,
        created_at=_now(now),
        guards=list(guards) if guards else None,
    )
    session.add(experiment)
    session.flush()
    return experiment


def lock_namespace(*, session: Session, cluster: str, namespace: str) -> None:
    """Until the transaction ends, no other caller of this function gets past it for the same
    namespace: counting a namespace's experiments and adding one become one step.

    PostgreSQL: a transaction-level advisory lock (row locks cannot guard rows not yet
    inserted). SQLite: nothing to do, as Store.write() began with BEGIN IMMEDIATE, which already
    keeps every other writer out until commit.
    """
    if session.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(f"{cluster}/{namespace}".encode()).digest()
        key = int.from_bytes(digest[:4], "big", signed=True)
        session.execute(
            text("SELECT pg_advisory_xact_lock(:kind, :key)"), {"kind": _NAMESPACE_LOCK_CLASS, "key": key}
        )


def count_holding_places(
    *, session: Session, cluster: str, namespace: str, now: datetime | None = None
) -> int:
    """Experiments that count against a namespace's concurrency cap: applied (active, ending)
    and being applied (pending, started within PENDING_HOLDS_FOR). Call under lock_namespace."""
    pending_since = _now(now) - PENDING_HOLDS_FOR
    statement = (
        select(func.count())
        .select_from(Experiment)
        .where(Experiment.cluster == cluster, Experiment.namespace == namespace)
        .where(
            Experiment.state.in_([s.value for s in _LIVE])
            | ((Experiment.state == ExperimentState.PENDING.value) & (Experiment.created_at >= pending_since))
        )
    )
    return int(session.scalar(statement) or 0)


def get_experiment(*, session: Session, experiment_id: str) -> Experiment:
    experiment = session.get(Experiment, experiment_id)
    if experiment is None:
        raise ExperimentNotFound(experiment_id)
    return experiment


def _claim(
    session: Session, experiment_id: str, allowed: Collection[ExperimentState], action: str
) -> Experiment:
    """The experiment, row-locked until commit, provided its state allows ``action``.

    The lock makes two racing callers (say the reaper and a user's clear) take turns, so only
    one of them sees the state it expects.
    """
    experiment = session.get(Experiment, experiment_id, with_for_update=True, populate_existing=True)
    if experiment is None:
        raise ExperimentNotFound(experiment_id)
    if experiment.state not in allowed:
        raise InvalidTransition(experiment_id, experiment.state, action)
    return experiment


def plan_experiment(
    *, session: Session, experiment_id: str, changes: Sequence[VirtualServiceChange]
) -> Experiment:
    """Keep what a pending experiment is about to change, before the cluster is touched, so a
    crash between the two still leaves a record of where to look."""
    experiment = _claim(session, experiment_id, [ExperimentState.PENDING], "plan")
    experiment.virtual_services = [asdict(change) for change in changes]
    session.flush()
    return experiment


def set_thread(*, session: Session, experiment_id: str, thread_ts: str) -> Experiment:
    """Keep the chat thread an experiment reports into (its parent message's ts)."""
    experiment = get_experiment(session=session, experiment_id=experiment_id)
    experiment.thread_ts = thread_ts
    session.flush()
    return experiment


def mark_active(
    *,
    session: Session,
    experiment_id: str,
    changes: Sequence[VirtualServiceChange],
    now: datetime | None = None,
) -> Experiment:
    """The fault is in place: keep exactly what was changed, start the clock."""
    experiment = _claim(session, experiment_id, [ExperimentState.PENDING], "activate")
    started = _now(now)
    experiment.virtual_services = [asdict(change) for change in changes]
    experiment.started_at = started
    experiment.expires_at = started + timedelta(seconds=experiment.duration_seconds)
    experiment.state = ExperimentState.ACTIVE.value
    session.flush()
    return experiment


def extend_experiment(*, session: Session, experiment_id: str, by: timedelta) -> Experiment:
    if by <= timedelta(0):
        raise InvalidValue(f"an extension must be positive, not {by}")
    experiment = _claim(session, experiment_id, [ExperimentState.ACTIVE], "extend")
    assert experiment.expires_at is not None  # set by mark_active with the state
    assert experiment.started_at is not None
    experiment.expires_at = experiment.expires_at + by
    # From the clock, rounded up: summing truncated extensions let `extend 999ms` add time the
    # stored duration never showed, so a cap checked against it could be passed step by step.
    lasts = experiment.expires_at - experiment.started_at
    experiment.duration_seconds = -(-lasts // timedelta(seconds=1))
    session.flush()
    return experiment


def begin_ending(
    *, session: Session, experiment_id: str, reason: EndReason, by: Actor | None = None
) -> Experiment:
    """Claim an active experiment for reverting; a second claimer gets InvalidTransition."""
    experiment = _claim(session, experiment_id, [ExperimentState.ACTIVE], "end")
    experiment.state = ExperimentState.ENDING.value
    experiment.end_reason = EndReason(reason).value
    _set_ended_by(experiment, by)
    session.flush()
    return experiment


def end_experiment(
    *,
    session: Session,
    experiment_id: str,
    reason: EndReason | None = None,
    by: Actor | None = None,
    now: datetime | None = None,
) -> Experiment:
    """The fault is reverted. The reason defaults to the one given when ending began."""
    experiment = _claim(session, experiment_id, _LIVE, "end")
    if reason is not None:
        experiment.end_reason = EndReason(reason).value
    if experiment.end_reason is None:
        raise InvalidValue(f"experiment {experiment_id} needs a reason to end")
    if by is not None:
        _set_ended_by(experiment, by)
    experiment.state = ExperimentState.ENDED.value
    experiment.ended_at = _now(now)
    session.flush()
    return experiment


def mark_failed(
    *, session: Session, experiment_id: str, detail: str, now: datetime | None = None
) -> Experiment:
    """Applying or reverting went wrong; ``detail`` says what, for whoever cleans up."""
    allowed = (ExperimentState.PENDING, *_LIVE)
    experiment = _claim(session, experiment_id, allowed, "mark failed")
    experiment.state = ExperimentState.FAILED.value
    experiment.end_reason = EndReason.FAILED.value
    experiment.detail = detail
    experiment.ended_at = _now(now)
    session.flush()
    return experiment


def list_active(
    *,
    session: Session,
    cluster: str | None = None,
    namespace: str | None = None,
    service: str | None = None,
) -> list[Experiment]:
    """Faults currently applied (active, or ending but not yet reverted), oldest first."""
    statement = select(Experiment).where(Experiment.state.in_([s.value for s in _LIVE]))
    if cluster is not None:
        statement = statement.where(Experiment.cluster == cluster)
    if namespace is not None:
        statement = statement.where(Experiment.namespace == namespace)
    if service is not None:
        statement = statement.where(Experiment.service == service)
    return list(session.scalars(statement.order_by(Experiment.started_at, Experiment.id)))


def list_expired_active(*, session: Session, now: datetime | None = None) -> list[Experiment]:
    """Active experiments past their expiry: the reaper's work list, most overdue first."""
    statement = (
        select(Experiment)
        .where(Experiment.state == ExperimentState.ACTIVE.value)
        .where(Experiment.expires_at <= _now(now))
        .order_by(Experiment.expires_at, Experiment.id)
    )
    return list(session.scalars(statement))


def _set_ended_by(experiment: Experiment, by: Actor | None) -> None:
    if by is None:
        return
    experiment.ended_by_team = by.team_id
    experiment.ended_by_user = by.user_id
    experiment.ended_by_name = by.display_name


def list_failed(
    *,
    session: Session,
    cluster: str | None = None,
    namespace: str | None = None,
    since: datetime | None = None,
) -> list[Experiment]:
    """Experiments that failed (to apply or to revert), newest first: what needs a person.

    ``list_active`` leaves them out, as they are no longer running as planned; `status` lists
    these beside the active ones so a fault that could not be removed stays in sight.
    """
    statement = select(Experiment).where(Experiment.state == ExperimentState.FAILED.value)
    if cluster is not None:
        statement = statement.where(Experiment.cluster == cluster)
    if namespace is not None:
        statement = statement.where(Experiment.namespace == namespace)
    if since is not None:
        statement = statement.where(Experiment.ended_at >= since)
    return list(session.scalars(statement.order_by(Experiment.ended_at.desc(), Experiment.id)))


def list_experiments(
    *,
    session: Session,
    since: datetime,
    channel: str | None = None,
    cluster: str | None = None,
) -> list[Experiment]:
    """Experiments created from ``since`` on (optionally in one channel), oldest first: a digest's
    "what ran today"."""
    statement = select(Experiment).where(Experiment.created_at >= since)
    if channel is not None:
        statement = statement.where(Experiment.channel == channel)
    if cluster is not None:
        statement = statement.where(Experiment.cluster == cluster)
    return list(session.scalars(statement.order_by(Experiment.created_at, Experiment.id)))
