"""The dead man's switch: one pass over the cluster that removes every expired fault.

It trusts only the cluster — the ``meshbot.dev/faults`` annotation on each VirtualService carries
every experiment's expiry and route names — so it works with the database gone, the service
crashed, or the scheduler never started. `meshbot reap` runs one pass (a CronJob does so every
minute, deploy/reaper-cronjob.yaml); the service runs it every ``lifecycle_reaper_seconds`` as a
backstop for its own expiry jobs.

When the database is reachable the pass also keeps the record straight: it claims the experiment
before touching the cluster (so it never races a user's clear or an expiry job into a double
revert), ends it, and audits what it did. When it is not, the fault is removed all the same and
the pass says so; the service ends the record once the database is back.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.lifecycle.notify import Notifier, deliver
from bot.lifecycle.revert import DATABASE_ERRORS, SCHEDULER, audit, describe_clear, finish
from core.store import (
    EndReason,
    Experiment,
    ExperimentNotFound,
    ExperimentState,
    InvalidTransition,
    Outcome,
    Store,
    Target,
    begin_ending,
    get_experiment,
    mark_failed,
)
from mesh.errors import MeshError
from mesh.kube import Kube
from mesh.virtualservices import MarkedFault, clear_fault, list_marked_faults

log = logging.getLogger(__name__)

VERB = "reap"


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
) -> ReapReport:
    """Remove every fault whose annotation expired at least ``grace`` before ``now``.

    Raises MeshError only when the VirtualServices cannot even be listed; a fault that cannot be
    removed is reported in ``failed`` and the pass goes on with the others. ``claimed`` lets the
    service skip experiments its own expiry jobs are reverting at this moment.
    """
    report = ReapReport(database=store is not None)
    if store is None:
        report.database_error = "no database configured or reachable"
    marked = list_marked_faults(kube, namespace)
    report.checked = len({(m.namespace, m.experiment_id) for m in marked})
    due: dict[tuple[str, str], list[MarkedFault]] = defaultdict(list)
    for mark in marked:
        if mark.expires <= now - grace:
            due[(mark.namespace, mark.experiment_id)].append(mark)
    for (ns, experiment_id), marks in due.items():
        if claimed(experiment_id):
            continue
        expired_at = min(m.expires for m in marks)
        try:
            _reap_one(kube, store, report, ns, experiment_id, marks, expired_at, now, notifier)
        except MeshError as exc:
            log.warning("could not reap %s in %s: %s", experiment_id, ns, exc)
            report.failed.append(NotReaped(ns, experiment_id, str(exc)))
    return report


def _reap_one(
    kube: Kube,
    store: Store | None,
    report: ReapReport,
    namespace: str,
    experiment_id: str,
    marks: list[MarkedFault],
    expired_at: datetime,
    now: datetime,
    notifier: Notifier | None,
) -> None:
    experiment, claim = _claim(store, report, experiment_id, now) if report.database else (None, "no-db")
    if claim == "extended":
        report.skipped.append(experiment_id)
        return
    cleared = clear_fault(
        kube, namespace=namespace, experiment_id=experiment_id, vs_names=sorted({m.vs_name for m in marks})
    )
    detail = describe_clear(cleared)
    report.reaped.append(Reaped(namespace, experiment_id, expired_at, detail))
    log.info("reaped %s in %s: %s", experiment_id, namespace, detail)
    if store is None or not report.database:
        return
    message = f"{experiment_id} expired {expired_at:%H:%M:%S} UTC and was reaped from the cluster: {detail}"
    try:
        if claim == "claimed":
            experiment = finish(store, experiment_id, reason=None, verb=VERB, message=message, now=now)
        elif claim == "pending":
            with store.write() as session:
                experiment = mark_failed(
                    session=session,
                    experiment_id=experiment_id,
                    detail="the fault reached the cluster but was never recorded as active (a crash "
                    f"while it was applied?); the reaper removed it at expiry: {detail}",
                    now=now,
                )
            audit(
                store,
                verb=VERB,
                command=f"reap {experiment_id}",
                outcome=Outcome.OK,
                message=message,
                experiment=experiment,
            )
        else:
            # Ended, failed, or unknown to this database: the cluster held a leftover.
            state = f"{experiment.state} in the store" if experiment else "unknown to the store"
            audit(
                store,
                verb=VERB,
                command=f"reap {experiment_id}",
                outcome=Outcome.OK,
                message=f"{message} (the experiment was {state})",
                experiment=experiment,
                target=Target(namespace=namespace),
            )
    except DATABASE_ERRORS as exc:
        _lost(report, exc)
        return
    if notifier is not None and experiment is not None:
        deliver(experiment_id, lambda: notifier.experiment_event(experiment, f"⏹ {message}", final=True))


def _claim(
    store: Store | None, report: ReapReport, experiment_id: str, now: datetime
) -> tuple[Experiment | None, str]:
    """Claim the experiment for reverting where the store allows; what the store says otherwise:
    "claimed" (now ending, ours to end), "extended" (the annotation is stale: leave it), "pending",
    or "other" (ended, failed, unknown: just clean the cluster)."""
    assert store is not None
    try:
        with store.write() as session:
            try:
                experiment = get_experiment(session=session, experiment_id=experiment_id)
            except ExperimentNotFound:
                return None, "other"
            if experiment.state == ExperimentState.ACTIVE:
                if experiment.expires_at is not None and experiment.expires_at > now:
                    return experiment, "extended"
                try:
                    experiment = begin_ending(
                        session=session, experiment_id=experiment_id, reason=EndReason.EXPIRED, by=SCHEDULER
                    )
                except InvalidTransition:
                    return experiment, "other"
                return experiment, "claimed"
            if experiment.state == ExperimentState.ENDING:
                return experiment, "claimed"
            if experiment.state == ExperimentState.PENDING:
                return experiment, "pending"
            return experiment, "other"
    except DATABASE_ERRORS as exc:
        _lost(report, exc)
        return None, "no-db"


def _lost(report: ReapReport, exc: Exception) -> None:
    if report.database:
        log.warning("the database is unavailable; reaping from the cluster alone: %s", exc)
    report.database = False
    report.database_error = str(exc).splitlines()[0][:300]
