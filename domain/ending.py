"""The one way a fault leaves the cluster and its experiment ends: claim → clear → end.

Every trigger goes this way — a person's `fault clear`, the expiry timer, the reaper (and guards
later) — so they leave the same cluster state and the same kind of record. The words: an
experiment *ends* (the record); its fault is *cleared* (the cluster).

* **claim** (:func:`claim_in`): row-locks the record and moves an active experiment to ``ending``,
  with the reason it ends; what the record says otherwise is a :class:`Verdict`, computed here
  only. A second claimer sees ``ENDING`` and, unless it is there to finish a half-ended one,
  leaves it.
* **clear** (:func:`clear`): removes exactly the experiment's routes and annotation entry;
  idempotent, so clearing again finds nothing.
* **end** (:func:`end_in`): closes the record, in the same transaction as its audit row when the
  trigger records one (a command is audited by the pipeline instead).

A crash between the steps leaves ``ending``, which the lifecycle finishes. Failures come in two
kinds, as in Kopf: :class:`TemporaryError` (the API server failed while clearing; the record stays
``ending``; worth retrying) and :class:`PermanentError` (nothing to retry: no such experiment, or
not in a state this trigger ends). Who retries, how often and when to escalate is decided by
one executor, the lifecycle's expiry jobs; this floor never retries.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.orm import Session

from core.errors import Refused
from core.store import (
    DATABASE_ERRORS,
    Experiment,
    ExperimentNotFound,
    InvalidTransition,
    Store,
    begin_ending,
    end_experiment,
    get_experiment,
    mark_failed,
    record_event,
)
from core.values import Actor, EndReason, ExperimentState, Outcome, Source, Target
from mesh import events
from mesh.errors import MeshError
from mesh.kube import Kube
from mesh.virtualservices import ClearReport, MarkedFault, clear_fault, list_marked_faults

log = logging.getLogger(__name__)

SCHEDULER = Actor.scheduler()
# A timer may fire a few milliseconds before the expiry it was armed for.
EARLY_FIRE = timedelta(milliseconds=5)


class Verdict(StrEnum):
    """What claiming found, and so what the trigger may do."""

    CLAIMED = "claimed"  # was active, now ending: ours to clear and end
    ENDING = "ending"  # already ending: begun by someone else, or by a process that died
    EXTENDED = "extended"  # active and not yet due: the trigger is stale, leave it
    PENDING = "pending"  # never recorded active: a crash while the fault was applied
    FAILED = "failed"  # applying or an earlier ending failed; the record keeps what went wrong
    ENDED = "ended"  # ended already: what the cluster holds is a leftover
    UNKNOWN = "unknown"  # no record in this store: a lost database, a leftover


# Verdicts whose experiment is ended by the end step; the others keep their record.
ENDS_RECORD = frozenset({Verdict.CLAIMED, Verdict.ENDING})
# What a trigger that works from the cluster (the reaper) takes out: all but a stale expiry.
ANY_DUE = frozenset(Verdict) - {Verdict.EXTENDED}


@dataclass(frozen=True)
class Claim:
    experiment_id: str
    verdict: Verdict
    experiment: Experiment | None = None


class TemporaryError(Exception):
    """Clearing failed in a way worth retrying (the API server failed); the record is unchanged,
    ``ending`` when it was claimed. ``str()`` is the cluster's error."""

    def __init__(self, experiment_id: str, cause: MeshError) -> None:
        super().__init__(str(cause))
        self.experiment_id = experiment_id
        self.cause = cause


class PermanentError(Refused):
    """Nothing to do and nothing to retry: the claim found the experiment unknown, extended, or in
    a state this trigger does not end (ending twice lands here). ``claim`` says which."""

    def __init__(self, claim: Claim) -> None:
        experiment = claim.experiment
        super().__init__(
            _why_not(claim),
            target=target_of(experiment) if experiment is not None else None,
        )
        self.claim = claim


def _why_not(claim: Claim) -> str:
    e, i = claim.experiment, claim.experiment_id
    if e is None or claim.verdict == Verdict.UNKNOWN:
        return f"there is no experiment {i}"
    if claim.verdict == Verdict.EXTENDED and e.expires_at is not None:
        return f"{i} was extended: it now ends {e.expires_at:%Y-%m-%d %H:%M:%S} UTC"
    if claim.verdict in (Verdict.ENDING, Verdict.CLAIMED):
        return f"{i} was already being ended by someone else"
    if claim.verdict == Verdict.ENDED:
        return f"{i} has already ended ({e.end_reason})"
    return f"{i} is {e.state}: there is nothing of it to end"


def target_of(experiment: Experiment) -> Target:
    return Target(cluster=experiment.cluster, namespace=experiment.namespace, service=experiment.service)


def vs_names(experiment: Experiment) -> list[str]:
    return [str(change["name"]) for change in experiment.virtual_services or [] if "name" in change]


# ---------------------------------------------------------------------- claim


def claim_in(
    session: Session,
    experiment_id: str,
    *,
    reason: EndReason,
    by: Actor,
    due: datetime | None = None,
) -> Claim:
    """Claim the experiment for ending inside the caller's transaction; the verdict says what the
    record allows. ``due``: the trigger is a timer that fired at this time, so an experiment
    expiring later was extended and is left alone."""
    try:
        experiment = get_experiment(session=session, experiment_id=experiment_id)
    except ExperimentNotFound:
        return Claim(experiment_id, Verdict.UNKNOWN)
    if experiment.state == ExperimentState.ACTIVE:
        expires = experiment.expires_at
        if due is not None and expires is not None and expires > due + EARLY_FIRE:
            return Claim(experiment_id, Verdict.EXTENDED, experiment)
        try:
            ending = begin_ending(session=session, experiment_id=experiment_id, reason=reason, by=by)
            return Claim(experiment_id, Verdict.CLAIMED, ending)
        except InvalidTransition:
            # Changed since it was read; the row lock refreshed it, so what it says now stands.
            pass
    return Claim(experiment_id, _STATE_VERDICTS.get(experiment.state, Verdict.ENDED), experiment)


_STATE_VERDICTS = {
    ExperimentState.ACTIVE.value: Verdict.ENDING,  # lost the race to a claimer that then ended
    ExperimentState.ENDING.value: Verdict.ENDING,
    ExperimentState.PENDING.value: Verdict.PENDING,
    ExperimentState.FAILED.value: Verdict.FAILED,
    ExperimentState.ENDED.value: Verdict.ENDED,
}


# ---------------------------------------------------------------------- clear


def clear(kube: Kube, *, namespace: str, experiment_id: str, vs_names: Sequence[str]) -> ClearReport:
    """Take the experiment's fault out of the cluster; TemporaryError when the API server fails."""
    try:
        report = clear_fault(kube, namespace=namespace, experiment_id=experiment_id, vs_names=list(vs_names))
    except MeshError as exc:
        # Forbidden and Invalid count too: an operator can fix those, and a fault left injecting
        # is worse than a retry that fails again.
        raise TemporaryError(experiment_id, exc) from exc
    # Every ending passes here (clear, expiry, reaper), so the Event is recorded once per clearing.
    for cleared in report.cleared:
        if not cleared.deleted:
            note = f"{len(cleared.removed_routes)} fault route(s) of experiment {experiment_id} removed"
            events.on_virtual_service(kube, namespace, cleared.vs_name, "FaultCleared", note)
    return report


def clear_experiment(kube: Kube, experiment: Experiment) -> ClearReport:
    return clear(
        kube, namespace=experiment.namespace, experiment_id=experiment.id, vs_names=vs_names(experiment)
    )


def describe_removed(report: ClearReport) -> str:
    """What clearing removed, in the words every trigger uses."""
    if report.found_nothing:
        return "its fault was no longer in the cluster"
    removed = sum(len(c.removed_routes) for c in report.cleared)
    parts = [f"{removed} fault route(s) removed from {', '.join(c.vs_name for c in report.cleared)}"]
    deleted = [c.vs_name for c in report.cleared if c.deleted]
    if deleted:
        parts.append(f"meshbot's VirtualService {', '.join(deleted)} deleted")
    if report.vanished:
        parts.append(f"VirtualService {', '.join(report.vanished)} had been deleted meanwhile")
    return "; ".join(parts)


# ---------------------------------------------------------------------- end


def record_in(
    session: Session,
    *,
    verb: str,
    message: str,
    target: Target,
    experiment_id: str | None,
    channel: str | None,
    outcome: Outcome = Outcome.OK,
    actor: Actor = SCHEDULER,
    source: Source = Source.SCHEDULER,
) -> None:
    """One audit row for something a trigger did by itself (no command to audit it)."""
    record_event(
        session=session,
        actor=actor,
        source=source,
        command=f"{verb} {experiment_id}" if experiment_id else verb,
        verb=verb,
        outcome=outcome,
        message=message[:500],
        channel=channel,
        target=target,
        experiment_id=experiment_id,
    )


def record(
    store: Store,
    *,
    verb: str,
    message: str,
    experiment: Experiment | None,
    outcome: Outcome = Outcome.OK,
    target: Target | None = None,
) -> None:
    """`record_in` in a transaction of its own; a database failure is logged (what it records
    already happened in the cluster)."""
    try:
        with store.write() as session:
            record_in(
                session,
                verb=verb,
                message=message,
                outcome=outcome,
                target=target or (target_of(experiment) if experiment else Target()),
                experiment_id=experiment.id if experiment else None,
                channel=experiment.channel if experiment else None,
            )
    except DATABASE_ERRORS:
        log.exception("could not record the audit event for %s", verb)


def end_in(
    session: Session,
    experiment_id: str,
    *,
    by: Actor,
    now: datetime,
    verb: str | None = None,
    message: str = "",
) -> Experiment:
    """Close an ``ending`` (or still ``active``) experiment inside the caller's transaction, with
    the reason given when ending began, and its audit row when ``verb`` is given.
    InvalidTransition (ended meanwhile) changes nothing."""
    experiment = end_experiment(session=session, experiment_id=experiment_id, by=by, now=now)
    if verb is not None:
        record_in(
            session,
            verb=verb,
            message=message,
            target=target_of(experiment),
            experiment_id=experiment_id,
            channel=experiment.channel,
        )
    return experiment


@dataclass(frozen=True)
class Ended:
    """What ending did. ``claim`` is None when it ran on the cluster alone (no store, or it
    failed: ``database_error`` says why); ``experiment`` is the record afterwards."""

    experiment_id: str
    namespace: str
    report: ClearReport
    claim: Claim | None
    experiment: Experiment | None = None
    database_error: str | None = None

    @property
    def removed(self) -> str:
        return describe_removed(self.report)

    @property
    def recorded(self) -> bool:
        return self.claim is not None and self.database_error is None


def end(
    kube: Kube,
    store: Store | None,
    experiment_id: str,
    *,
    namespace: str,
    vs_names: Sequence[str],
    reason: EndReason,
    by: Actor,
    now: datetime,
    accept: Collection[Verdict] = frozenset({Verdict.CLAIMED}),
    due: datetime | None = None,
    verb: str | None = None,
    message: Callable[[str], str] = lambda removed: removed,
    cluster_alone: bool = False,
) -> Ended:
    """End one experiment: claim, clear, end — the path every trigger but the batched expiry
    jobs takes (they call the same steps, sharing transactions).

    ``accept``: the verdicts for which this trigger takes the fault out; any other raises
    PermanentError before the cluster is touched. ``verb``: the audit verb of a trigger that
    records itself. ``message(removed)``: its audit message. ``cluster_alone``: when the store
    fails (or is None), clear all the same and leave the record for later, rather than raising.
    """
    claim: Claim | None = None
    database_error: str | None = None if store is not None else "no database configured or reachable"
    if store is not None:
        try:
            with store.write() as session:
                claim = claim_in(session, experiment_id, reason=reason, by=by, due=due)
        except DATABASE_ERRORS as exc:
            if not cluster_alone:
                raise
            database_error = _first_line(exc)
    if claim is not None and claim.verdict not in accept:
        raise PermanentError(claim)
    report = clear(kube, namespace=namespace, experiment_id=experiment_id, vs_names=vs_names)
    if claim is not None and claim.verdict == Verdict.ENDED and report.found_nothing:
        # Ended by another path, its fault taken out, between this trigger's look at the cluster
        # and its claim (a reaper pass racing the expiry after a takeover): nothing was done here,
        # so nothing is recorded — a second end row would say it ended twice.
        raise PermanentError(claim)
    if claim is None:
        return Ended(experiment_id, namespace, report, None, database_error=database_error)
    assert store is not None
    removed = describe_removed(report)
    try:
        with store.write() as session:
            experiment = _end_record(
                session,
                claim,
                namespace=namespace,
                reason=reason,
                by=by,
                now=now,
                verb=verb,
                message=message(removed),
            )
    except InvalidTransition:
        if claim.verdict != Verdict.ENDING:
            raise
        # We came to finish an ending begun by someone else, who finished it first: theirs is the
        # end path, ours a refusal, like any clear that arrives once it has ended.
        with store.read() as session:
            raise PermanentError(
                Claim(
                    experiment_id, Verdict.ENDED, get_experiment(session=session, experiment_id=experiment_id)
                )
            ) from None
    except DATABASE_ERRORS as exc:
        if not cluster_alone:
            raise
        # The fault is gone; the record stays as claimed and the lifecycle ends it later.
        return Ended(experiment_id, namespace, report, claim, claim.experiment, _first_line(exc))
    return Ended(experiment_id, namespace, report, claim, experiment)


def _end_record(
    session: Session,
    claim: Claim,
    *,
    namespace: str,
    reason: EndReason,
    by: Actor,
    now: datetime,
    verb: str | None,
    message: str,
) -> Experiment | None:
    experiment_id = claim.experiment_id
    if claim.verdict in ENDS_RECORD:
        return end_in(session, experiment_id, by=by, now=now, verb=verb, message=message)
    if claim.verdict == Verdict.PENDING:
        failed = mark_failed(
            session=session,
            experiment_id=experiment_id,
            detail="the fault reached the cluster but was never recorded as active (a crash while it "
            f"was applied?); it was removed from the cluster ({EndReason(reason).value}): {message}",
            now=now,
        )
        if verb is not None:
            record_in(
                session,
                verb=verb,
                message=message,
                target=target_of(failed),
                experiment_id=experiment_id,
                channel=failed.channel,
            )
        return failed
    # Failed, ended or unknown: the record stays; the cluster held a leftover.
    experiment = claim.experiment
    if verb is not None:
        state = f"{experiment.state} in the store" if experiment else "unknown to the store"
        record_in(
            session,
            verb=verb,
            message=f"{message} (the experiment was {state})",
            target=Target(namespace=namespace),
            experiment_id=experiment_id,
            channel=experiment.channel if experiment else None,
        )
    return experiment


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else exc.__class__.__name__


# ---------------------------------------------------------------------- due, from the cluster


@dataclass(frozen=True)
class Due:
    """A fault past its expiry by the cluster's own annotation: what a trigger can end with no
    store at all."""

    namespace: str
    experiment_id: str
    expired_at: datetime
    vs_names: tuple[str, ...] = field(default=())


def due_from_cluster(
    kube: Kube, *, now: datetime, grace: timedelta = timedelta(0), namespace: str | None = None
) -> tuple[int, list[Due]]:
    """How many faults the cluster carries, and those expired at least ``grace`` before ``now``
    (MeshError when the VirtualServices cannot be listed)."""
    return due_of(list_marked_faults(kube, namespace), now=now, grace=grace)


def due_of(marked: list[MarkedFault], *, now: datetime, grace: timedelta) -> tuple[int, list[Due]]:
    """`due_from_cluster` on faults already read from the cluster."""
    checked = len({(m.namespace, m.experiment_id) for m in marked})
    found: dict[tuple[str, str], list[MarkedFault]] = defaultdict(list)
    for mark in marked:
        if mark.expires <= now - grace:
            found[(mark.namespace, mark.experiment_id)].append(mark)
    due = [
        Due(ns, experiment_id, min(m.expires for m in marks), tuple(sorted({m.vs_name for m in marks})))
        for (ns, experiment_id), marks in found.items()
    ]
    return checked, due
