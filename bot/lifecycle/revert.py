"""The steps of taking an experiment's fault out, shared by the expiry jobs and the reaper.

Reverting is claim → clear → end: ``begin_ending`` row-locks and moves the experiment to
``ending`` (a second claimer — a user's `fault clear`, the reaper, another replica — is refused),
``clear_fault`` removes exactly its routes and annotation entry (idempotent: clearing twice finds
nothing the second time), and ``end_experiment`` closes the record in the same transaction as its
audit event. A crash between the steps leaves ``ending``, which the next leader finishes.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core.store import (
    Actor,
    DatabaseUnavailable,
    EndReason,
    Experiment,
    Outcome,
    SchemaNotCurrent,
    Source,
    Store,
    Target,
    end_experiment,
    record_event,
)
from mesh.kube import Kube
from mesh.virtualservices import ClearReport, clear_fault

log = logging.getLogger(__name__)

SCHEDULER = Actor.scheduler()
# The database being down or gone shows up as any of these; anything else is a bug to surface.
DATABASE_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError, DatabaseUnavailable, SchemaNotCurrent)


def vs_names(experiment: Experiment) -> list[str]:
    return [str(change["name"]) for change in experiment.virtual_services or [] if "name" in change]


def clear(kube: Kube, experiment: Experiment) -> ClearReport:
    """Take the experiment's fault out of the cluster (MeshError when the API server fails)."""
    return clear_fault(
        kube, namespace=experiment.namespace, experiment_id=experiment.id, vs_names=vs_names(experiment)
    )


def describe_clear(report: ClearReport) -> str:
    removed = sum(len(c.removed_routes) for c in report.cleared)
    if report.found_nothing:
        return "its fault was no longer in the cluster"
    parts = [f"{removed} fault route(s) removed from {', '.join(c.vs_name for c in report.cleared)}"]
    deleted = [c.vs_name for c in report.cleared if c.deleted]
    if deleted:
        parts.append(f"meshbot's VirtualService {', '.join(deleted)} deleted")
    if report.vanished:
        parts.append(f"VirtualService {', '.join(report.vanished)} had been deleted meanwhile")
    return "; ".join(parts)


def target_of(experiment: Experiment) -> Target:
    return Target(cluster=experiment.cluster, namespace=experiment.namespace, service=experiment.service)


def audit(
    store: Store,
    *,
    verb: str,
    command: str,
    outcome: Outcome,
    message: str,
    experiment: Experiment | None = None,
    target: Target | None = None,
    channel: str | None = None,
    actor: Actor = SCHEDULER,
    source: Source = Source.SCHEDULER,
) -> None:
    """Record one lifecycle action; a database failure is logged (the action already happened)."""
    try:
        with store.write() as session:
            record_event(
                session=session,
                actor=actor,
                source=source,
                command=command,
                verb=verb,
                outcome=outcome,
                message=message[:500],
                channel=channel if channel is not None else (experiment.channel if experiment else None),
                target=target or (target_of(experiment) if experiment else Target()),
                experiment_id=experiment.id if experiment else None,
            )
    except DATABASE_ERRORS:
        log.exception("could not record the audit event for %r", command)


def finish(
    store: Store,
    experiment_id: str,
    *,
    reason: EndReason | None,
    verb: str,
    message: str,
    now: datetime,
) -> Experiment:
    """Close an ``active``/``ending`` experiment and record its audit event in one transaction.

    ``reason`` None keeps the one given when ending began (say, a user's clear this finishes).
    """
    with store.write() as session:
        return finish_in(session, experiment_id, reason=reason, verb=verb, message=message, now=now)


def finish_in(
    session: Session,
    experiment_id: str,
    *,
    reason: EndReason | None,
    verb: str,
    message: str,
    now: datetime,
) -> Experiment:
    """`finish` inside a transaction the caller holds (InvalidTransition changes nothing)."""
    experiment = end_experiment(
        session=session, experiment_id=experiment_id, reason=reason, by=SCHEDULER, now=now
    )
    record_event(
        session=session,
        actor=SCHEDULER,
        source=Source.SCHEDULER,
        command=f"{verb} {experiment_id}",
        verb=verb,
        outcome=Outcome.OK,
        message=message[:500],
        channel=experiment.channel,
        target=target_of(experiment),
        experiment_id=experiment_id,
    )
    return experiment
