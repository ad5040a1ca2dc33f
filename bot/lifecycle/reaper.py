"""The dead man's switch: one pass over the cluster that removes every expired fault.

It trusts only the cluster — the ``meshbot.dev/faults`` annotation on each VirtualService carries
every experiment's expiry and route names — so it works with the database gone, the service
crashed, or the scheduler never started. `meshbot reap` runs one pass (a CronJob does so every
minute, deploy/reaper-cronjob.yaml); the service runs it every ``lifecycle_reaper_seconds`` as a
backstop for its own expiry jobs.

Each due fault is ended the one way (domain.ending), this pass being its trigger: with the
database reachable it claims the experiment before touching the cluster (so it never races a
user's clear or an expiry job into a double clear), ends it, and audits with verb ``reap``. When
it is not, the fault is cleared all the same and the pass says so; the service ends the record
once the database is back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.lifecycle.notify import Notifier, deliver
from core.store import EndReason, ExperimentState, Store, list_active
from domain import ending
from domain.ending import DATABASE_ERRORS, SCHEDULER, Due
from mesh.kube import Kube
from mesh.virtualservices import list_marked_faults

log = logging.getLogger(__name__)

VERB = "reap"
# The audit verb of an experiment ended because the cluster no longer had it.
RECONCILE_VERB = "reconcile"


@dataclass(frozen=True)
class Reaped:
    namespace: str
    experiment_id: str
    expired_at: datetime
    detail: str


@dataclass(frozen=True)
class NotReaped:
    namespace: str
    experiment_id: str
    error: str


@dataclass
class ReapReport:
    """What one pass did; ``database`` is False when it ran on the cluster alone."""

    checked: int = 0
    reaped: list[Reaped] = field(default_factory=list)
    failed: list[NotReaped] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # expired in the cluster, extended in the store
    gone: list[str] = field(default_factory=list)  # active in the store, no longer in the cluster
    # When the next fault that only the reaper will end falls due (None: none in the cluster).
    next_due_at: datetime | None = None
    database: bool = True
    database_error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed

    def lines(self) -> list[str]:
        out = [
            f"reaped {r.experiment_id} in {r.namespace} "
            f"(expired {r.expired_at:%Y-%m-%d %H:%M:%S} UTC): {r.detail}"
            for r in self.reaped
        ]
        out += [f"could not reap {f.experiment_id} in {f.namespace}: {f.error}" for f in self.failed]
        out += [f"left {s}: extended in the store, its annotation is being updated" for s in self.skipped]
        out += [f"ended {g}: gone from the cluster (removed outside meshbot)" for g in self.gone]
        if not self.database:
            out.append(f"ran without the database ({self.database_error}); records were not updated")
        out.append(
            f"{self.checked} fault(s) checked, {len(self.reaped)} reaped, {len(self.failed)} could not be"
        )
        return out


def reap(
    kube: Kube,
    store: Store | None,
    *,
    now: datetime,
    grace: timedelta = timedelta(0),
    notifier: Notifier | None = None,
    namespace: str | None = None,
    claimed: Callable[[str], bool] = lambda _id: False,
    cluster: str | None = None,
) -> ReapReport:
    """End every fault whose annotation expired at least ``grace`` before ``now``, and — with
    the store and the ``cluster`` name — every experiment the store holds active whose routes
    left the cluster without meshbot (kubectl, a rebuilt cluster): the two are reconciled both
    ways, so `status` and `fault list` never show a fault that is not there.

    Raises MeshError only when the VirtualServices cannot even be listed; a fault that cannot be
    cleared is reported in ``failed`` and the pass goes on with the others — the next pass is its
    retry. ``claimed`` lets the service skip experiments its own expiry jobs are ending right now.
    """
    report = ReapReport(database=store is not None)
    if store is None:
        report.database_error = "no database configured or reachable"
    marked = list_marked_faults(kube, namespace)
    report.checked, due = ending.due_of(marked, now=now, grace=grace)
    # What no expiry job will end (a start recorded as failed whose write landed late, a fault
    # with no record at all) is the reaper's alone: the service sweeps again when it falls due.
    report.next_due_at = min(
        (m.expires + grace for m in marked if m.expires + grace > now and not claimed(m.experiment_id)),
        default=None,
    )
    for fault in due:
        if claimed(fault.experiment_id):
            continue
        try:
            _reap_one(kube, store if report.database else None, report, fault, now, notifier)
        except ending.TemporaryError as exc:
            log.warning("could not reap %s in %s: %s", fault.experiment_id, fault.namespace, exc)
            report.failed.append(NotReaped(fault.namespace, fault.experiment_id, str(exc)))
    if store is not None and report.database and cluster is not None:
        _end_the_gone(kube, store, report, cluster=cluster, namespace=namespace, now=now, grace=grace)
    return report


def _end_the_gone(
    kube: Kube,
    store: Store,
    report: ReapReport,
    *,
    cluster: str,
    namespace: str | None,
    now: datetime,
    grace: timedelta,
) -> None:
    live = {m.experiment_id for m in list_marked_faults(kube, namespace) if m.live}
    try:
        with store.read() as session:
            # Only those active a while: one being applied right now is not in the cluster yet.
            missing = [
                e
                for e in list_active(session=session, cluster=cluster, namespace=namespace)
                if e.state == ExperimentState.ACTIVE
                and e.id not in live
                and e.started_at is not None
                and e.started_at <= now - grace
            ]
    except DATABASE_ERRORS as exc:
        _lost(report, str(exc).splitlines()[0])
        return
    for experiment in missing:

        def message(removed: str, gone_id: str = experiment.id) -> str:
            return (
                f"{gone_id} was active in the store but its fault was no longer in the cluster "
                f"(removed outside meshbot); ended as gone ({removed})"
            )

        try:
            ending.end(
                kube,
                store,
                experiment.id,
                namespace=experiment.namespace,
                vs_names=ending.vs_names(experiment),
                reason=EndReason.GONE,
                by=SCHEDULER,
                now=now,
                verb=RECONCILE_VERB,
                message=message,
            )
        except (ending.PermanentError, ending.TemporaryError) as exc:
            log.warning("could not end %s, gone from the cluster: %s", experiment.id, exc)
            continue
        except DATABASE_ERRORS as exc:
            _lost(report, str(exc).splitlines()[0])
            return
        report.gone.append(experiment.id)
        log.warning("%s was active in the store but gone from the cluster; ended it", experiment.id)


def _reap_one(
    kube: Kube,
    store: Store | None,
    report: ReapReport,
    fault: Due,
    now: datetime,
    notifier: Notifier | None,
) -> None:
    experiment_id = fault.experiment_id

    def message(removed: str) -> str:
        return (
            f"{experiment_id} expired {fault.expired_at:%H:%M:%S} UTC and was reaped from the cluster: "
            f"{removed}"
        )

    try:
        ended = ending.end(
            kube,
            store,
            experiment_id,
            namespace=fault.namespace,
            vs_names=fault.vs_names,
            reason=EndReason.EXPIRED,
            by=SCHEDULER,
            now=now,
            # Whatever the store says — pending, failed, ended, unknown — an expired fault goes;
            # only one the store says was extended stays (its annotation is being updated).
            accept=ending.ANY_DUE,
            due=now,
            verb=VERB,
            message=message,
            cluster_alone=True,
        )
    except ending.PermanentError:
        report.skipped.append(experiment_id)
        return
    report.reaped.append(Reaped(fault.namespace, experiment_id, fault.expired_at, ended.removed))
    log.info("reaped %s in %s: %s", experiment_id, fault.namespace, ended.removed)
    if store is not None and ended.database_error is not None:
        _lost(report, ended.database_error)
    experiment = ended.experiment
    if notifier is not None and ended.recorded and experiment is not None:
        text = f"⏹ {message(ended.removed)}"
        deliver(experiment_id, lambda: notifier.experiment_event(experiment, text, final=True))


def _lost(report: ReapReport, error: str) -> None:
    if report.database:
        log.warning("the database is unavailable; reaping from the cluster alone: %s", error)
    report.database = False
    report.database_error = error
