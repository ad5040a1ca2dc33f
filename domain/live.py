"""Which faults are live: the store's records held against what the cluster carries.

The store alone can be wrong both ways — a route removed with kubectl, or a cluster rebuilt
under the database, leaves a record "active"; a write that landed after its command gave up
leaves a fault with no live record. Readers (`status`, `fault list`) show both sides; the
reaper acts on them (ends the gone, removes the unrecorded at their expiry).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from core.durations import human_duration
from core.store import Experiment, ExperimentState, Store, list_active, list_failed
from mesh.errors import MeshError
from mesh.kube import Kube
from mesh.virtualservices import MarkedFault, list_marked_faults


@dataclass(frozen=True)
class LiveFault:
    experiment: Experiment
    # False: recorded active but its routes are gone; None: the cluster could not be read.
    in_cluster: bool | None


@dataclass(frozen=True)
class LiveView:
    faults: list[LiveFault] = field(default_factory=list)
    # Failed reverts the cluster still carries: a person should look.
    stuck: list[Experiment] = field(default_factory=list)
    # In the cluster with no live or failed record: the reaper removes them at their expiry.
    unrecorded: list[MarkedFault] = field(default_factory=list)
    cluster_error: str | None = None


def live_faults(store: Store, kube: Kube, *, cluster: str, namespace: str | None) -> LiveView:
    with store.read() as session:
        active = list_active(session=session, cluster=cluster, namespace=namespace)
        failed = list_failed(session=session, cluster=cluster, namespace=namespace)
    try:
        marks = [m for m in list_marked_faults(kube, namespace) if m.live]
    except MeshError as exc:
        return LiveView([LiveFault(e, None) for e in active], cluster_error=str(exc))
    carried = {m.experiment_id for m in marks}
    known = {e.id for e in active} | {e.id for e in failed}
    unrecorded = {m.experiment_id: m for m in marks if m.experiment_id not in known}
    return LiveView(
        faults=[LiveFault(e, e.id in carried) for e in active],
        stuck=[e for e in failed if e.id in carried],
        unrecorded=list(unrecorded.values()),
    )


def describe_fault(experiment: Experiment) -> str:
    """What the fault does, as it was asked: `abort 500 on 50%`, `delay 3s on 100%`."""
    parameters = experiment.parameters or {}
    if experiment.kind == "delay":
        what = f"delay {human_duration(timedelta(milliseconds=int(parameters.get('delay_ms', 0))))}"
    else:
        what = f"abort {parameters.get('http_status') or parameters.get('grpc_status')}"
    return f"{what} on {float(parameters.get('percentage', 100)):g}%"


def state_of(fault: LiveFault) -> str | None:
    """A word on a fault whose record and cluster disagree, or None when they agree."""
    if fault.in_cluster is False and fault.experiment.state == ExperimentState.ACTIVE:
        return "gone from the cluster (removed outside meshbot; the lifecycle ends its record)"
    return None
