"""What a fault experiment is: it starts (recorded, then applied), it may be extended, and it ends
on time (domain.ending, the one way it leaves the cluster and the record).

The store hears of a fault before the cluster does (a pending experiment naming the planned
changes), so a crash between the two leaves a record to clean up from — and the VirtualService
annotations carry the expiry, so the reaper can undo a fault even without the store.

This floor takes typed values, not a verb's command: the verb parses and words the reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.durations import human_duration
from core.errors import Refused
from core.guards import Guard
from core.policy import Policy
from core.store import (
    ExperimentNotFound,
    InvalidTransition,
    Store,
    VirtualServiceChange,
    count_holding_places,
    create_experiment,
    extend_experiment,
    get_experiment,
    lock_namespace,
    mark_active,
    mark_failed,
    plan_experiment,
)
from core.values import Actor, ExperimentKind, Target
from mesh import events
from mesh.errors import MeshError, NotFound
from mesh.faults import FaultSpec
from mesh.kube import Kube
from mesh.namespaces import require_service
from mesh.virtualservices import (
    AppliedChange,
    FaultPlan,
    apply_fault,
    list_marked_faults,
    plan_fault,
    update_expiry,
)


@dataclass(frozen=True)
class Started:
    experiment_id: str
    target: Target
    expires_at: datetime
    duration: timedelta
    changes: list[AppliedChange]
    # What was applied, as planned: the pre-flight reads it (after the fault is in, see handlers.fault).
    plan: FaultPlan
    warnings: list[str] = field(default_factory=list)


class NotApplied(MeshError):
    """Applying failed after the experiment was recorded (now ``failed``). ``str()`` is the
    cluster's error, which says whether the undo worked; ``left_behind`` names the
    VirtualServices still carrying the fault ([] none, None could not be checked)."""

    def __init__(self, experiment_id: str, cause: MeshError, left_behind: list[str] | None) -> None:
        super().__init__(str(cause))
        self.experiment_id = experiment_id
        self.cause = cause
        self.left_behind = left_behind


def start(
    *,
    namespace: str,
    service: str,
    spec: FaultSpec,
    duration: timedelta | None,
    actor: Actor,
    channel: str | None,
    cluster: str,
    kube: Kube,
    store: Store,
    policy: Policy,
    now: datetime,
    guards: Sequence[Guard] = (),
) -> Started:
    """Record, plan and apply a fault. ``duration`` None takes the policy's default.

    Refused for what policy or the cluster rules out before anything is applied; NotApplied when
    applying failed (recorded as failed, undone as far as possible); other MeshErrors when
    planning failed (recorded as failed, nothing applied).
    """
    target = Target(cluster=cluster, namespace=namespace, service=service)
    duration = check_limits(target, duration, policy)
    # Checked before an experiment is recorded: a typo'd service is a refusal, not a failed experiment.
    try:
        require_service(kube, namespace, service)
    except NotFound as exc:
        raise Refused(str(exc), target=target) from None
    limits = policy.faults
    with store.write() as session:
        # Count and insert as one step: starts racing each other each saw room for one more.
        # Pending experiments count, or every start in flight would see the same free place.
        lock_namespace(session=session, cluster=cluster, namespace=namespace)
        running = count_holding_places(session=session, cluster=cluster, namespace=namespace, now=now)
        if running >= limits.max_concurrent_per_namespace:
            raise Refused(
                f"{namespace} already has {running} active faults, the policy's maximum; "
                "clear one first (`fault list`)",
                target=target,
            )
        experiment = create_experiment(
            session=session,
            kind=ExperimentKind(spec.kind),
            parameters=parameters(spec),
            cluster=cluster,
            namespace=namespace,
            service=service,
            duration=duration,
            created_by=actor,
            channel=channel,
            now=now,
            guards=[g.to_json() for g in guards],
        )
        experiment_id = experiment.id
    expires_at = now + duration
    try:
        plan = plan_fault(
            kube,
            namespace=namespace,
            service=service,
            spec=spec,
            experiment_id=experiment_id,
            expires_at=expires_at,
            service_checked=True,
        )
    except MeshError as exc:
        _fail(store, experiment_id, str(exc))
        if isinstance(exc, NotFound):
            raise Refused(str(exc), target=target) from None
        raise
    changes = [
        VirtualServiceChange(
            namespace=namespace,
            name=change.vs_name,
            inserted_routes=list(change.inserted_routes),
            before={
                "spec": change.spec_before,
                "annotations": change.annotations_before,
                "created": change.created,
            },
        )
        for change in plan.changes
    ]
    with store.write() as session:
        plan_experiment(session=session, experiment_id=experiment_id, changes=changes)
    try:
        applied = apply_fault(kube, plan)
    except MeshError as exc:
        _fail(store, experiment_id, str(exc))
        raise NotApplied(experiment_id, exc, _left_behind(kube, namespace, experiment_id)) from exc
    with store.write() as session:
        mark_active(session=session, experiment_id=experiment_id, changes=changes, now=now)
    note = (
        f"{_fault_words(spec)} on {service} by {actor.user_id}, ends {expires_at:%H:%M} UTC "
        f"(experiment {experiment_id})"
    )
    for change in applied.changes:
        events.on_virtual_service(kube, namespace, change.vs_name, "FaultInjected", note)
    return Started(
        experiment_id, target, expires_at, duration, list(applied.changes), plan, list(applied.warnings)
    )


def _fault_words(spec: FaultSpec) -> str:
    if spec.delay is not None:
        what = f"delay {human_duration(spec.delay)}"
    else:
        what = f"abort {spec.http_status if spec.http_status is not None else spec.grpc_status}"
    return f"{what} {spec.percentage:g}%"


def check_limits(target: Target, duration: timedelta | None, policy: Policy) -> timedelta:
    """The policy's refusals that need no cluster: the namespace protected, the duration above the
    cap. Returns the duration to run for (the default when None). A fault's start checks these,
    and so does a schedule when it is made, so nobody learns of them only when it runs."""
    namespace = target.namespace or ""
    if policy.is_protected(namespace):
        raise Refused(
            f"namespace {namespace} is protected by policy: faults are not allowed there", target=target
        )
    limits = policy.faults
    duration = duration or limits.default_duration
    if duration > limits.max_duration:
        raise Refused(
            f"a fault may last at most {human_duration(limits.max_duration)} by policy; "
            f"{human_duration(duration)} asked",
            target=target,
        )
    return duration


def parameters(spec: FaultSpec) -> dict[str, object]:
    """The fault as the store keeps it."""
    params: dict[str, object] = {"percentage": spec.percentage, "headers": dict(spec.headers)}
    if spec.delay is not None:
        params["delay_ms"] = round(spec.delay.total_seconds() * 1000)
    if spec.http_status is not None:
        params["http_status"] = spec.http_status
    if spec.grpc_status is not None:
        params["grpc_status"] = spec.grpc_status
    return params


def _left_behind(kube: Kube, namespace: str, experiment_id: str) -> list[str] | None:
    try:
        marked = list_marked_faults(kube, namespace)
    except MeshError:
        return None
    return sorted({m.vs_name for m in marked if m.experiment_id == experiment_id})


def _fail(store: Store, experiment_id: str, detail: str) -> None:
    with store.write() as session:
        mark_failed(session=session, experiment_id=experiment_id, detail=detail)


@dataclass(frozen=True)
class Extended:
    experiment_id: str
    target: Target
    expires_at: datetime


def extend(
    *, experiment_id: str, by: timedelta, max_duration: timedelta, kube: Kube, store: Store
) -> Extended:
    """Push an active experiment's end back: the store first, then the annotation the reaper
    reads (a reaper looking in between sees the store's later expiry and leaves it)."""
    with store.write() as session:
        try:
            experiment = get_experiment(session=session, experiment_id=experiment_id)
        except ExperimentNotFound:
            raise Refused(f"there is no experiment {experiment_id}") from None
        target = Target(
            cluster=experiment.cluster, namespace=experiment.namespace, service=experiment.service
        )
        try:
            # Row-locked: two extensions racing cannot both pass the cap below.
            experiment = extend_experiment(session=session, experiment_id=experiment_id, by=by)
        except InvalidTransition:
            raise Refused(
                f"{experiment_id} is {experiment.state}, not active: it cannot be extended", target=target
            ) from None
        expires_at = experiment.expires_at
        assert expires_at is not None and experiment.started_at is not None
        # From the clock, exactly: a stored whole-second duration plus `by` drops fractions, and
        # `extend 999ms` repeated crept past the cap. Refused rolls the extension back.
        total = expires_at - experiment.started_at
        if total > max_duration:
            raise Refused(
                f"{experiment_id} would last {human_duration(total)} in all; "
                f"the policy allows at most {human_duration(max_duration)}",
                target=target,
            )
    update_expiry(kube, namespace=target.namespace or "", experiment_id=experiment_id, expires_at=expires_at)
    return Extended(experiment_id, target, expires_at)
