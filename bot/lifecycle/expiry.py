"""Ending faults on time: one APScheduler job per active experiment, armed from the store.

The store is the source of truth and the jobs are a cache of it. The leader reads the live
experiments every ``lifecycle_sync_seconds`` (one indexed query) and (re-)arms a job wherever the
expiry it armed differs from the store's — new experiments from any replica, and extensions — and
drops the jobs of experiments that ended otherwise. A job re-reads its experiment before acting,
so one that fires for an experiment extended meanwhile re-arms instead of ending early.

Ending is the one path of domain.ending — claim → clear → end — with this job as its timer
trigger (audit verb ``expire``); claims and ends of experiments expiring together share
transactions. This is the one executor that decides retries: the domain says whether a failure
is temporary (the API server failed while clearing) or permanent (nothing left to end). On a
temporary one the job re-arms itself with exponential back-off; after ``revert_escalate_after``
failed attempts the experiment is marked ``failed`` (with what went wrong), the thread is told,
and the retries go on at the longest back-off until the fault is gone — cleared by us, or by
someone. When the database fails instead, the fault is cleared all the same, from what the
cluster's annotation says; the record is ended once the database answers again.

Reminders ride on the same arming: one job ``reminder_lead_seconds`` before the end ("ends in
2 min — extend or stop now"), and for long experiments a nudge every ``nudge_every_seconds``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.lifecycle import jobs
from bot.lifecycle.batch import GroupCommit
from bot.lifecycle.notify import EXTEND_ACTION, STOP_ACTION, Button, deliver
from bot.lifecycle.runtime import Runtime
from core.durations import human_duration
from core.settings import Settings
from core.store import (
    EndReason,
    Experiment,
    ExperimentNotFound,
    ExperimentState,
    InvalidTransition,
    Outcome,
    get_experiment,
    list_active,
    mark_failed,
)
from domain import ending
from domain.ending import DATABASE_ERRORS, SCHEDULER, Claim, Verdict
from mesh.errors import MeshError
from mesh.virtualservices import list_marked_faults

log = logging.getLogger(__name__)

_GONE_OR_DOWN: tuple[type[Exception], ...] = (ExperimentNotFound, *DATABASE_ERRORS)

VERB = "expire"
# An experiment seen `ending` this long, with no job of ours on it, was left half-ended by a
# process that died (or a clear that failed): end it.
ENDING_GRACE = timedelta(seconds=10)


def _job(kind: str, experiment_id: str) -> str:
    return f"{kind}:{experiment_id}"


@dataclass
class _Armed:
    """What the leader armed for one experiment, and enough to clear it without the store."""

    experiment: Experiment
    expires_at: datetime
    reminder_at: datetime | None = None
    nudge_at: datetime | None = None


def _short(delta: timedelta) -> str:
    return human_duration(timedelta(seconds=max(1, round(delta.total_seconds()))))


class Expiries:
    def __init__(self, rt: Runtime, after_end: Callable[[Experiment, str], object] | None = None) -> None:
        self.rt = rt
        # Called with each experiment this executor ended and how (the report card hooks in here).
        self.after_end = after_end
        self._lock = threading.Lock()
        self._armed: dict[str, _Armed] = {}
        self._attempts: dict[str, int] = {}
        self._running: set[str] = set()
        self._retrying: set[str] = set()
        self._ending_seen: dict[str, float] = {}
        # Claims and ends of experiments expiring together share transactions (bot.lifecycle.batch).
        self._claims: GroupCommit[str, tuple[EndReason, datetime], Claim] = GroupCommit(self._claim_batch)
        self._ends: GroupCommit[str, tuple[str, datetime], Experiment] = GroupCommit(self._end_batch)

    def reset(self) -> None:
        """Forget everything armed (stepping down: the next leader re-arms from the store)."""
        with self._lock:
            self._armed.clear()
            self._attempts.clear()
            self._retrying.clear()
            self._ending_seen.clear()

    def owns(self, experiment_id: str) -> bool:
        """Whether a job of ours is ending it, retrying to, or about to (the reaper leaves it
        alone). An expiry job armed for an overdue fault runs at once; were the reaper to take
        the fault first, a fault missed while no leader ran would end as "expired" instead of
        "reverted after restart"."""
        with self._lock:
            if experiment_id in self._running or experiment_id in self._retrying:
                return True
        return self.rt.has_job(_job("expire", experiment_id))

    # ------------------------------------------------------------------ arming from the store

    def sync(self, *, first: bool = False) -> None:
        """Arm, re-arm and disarm from the store's live experiments (raises on database errors).

        ``first``: the first read of a new leader, which ends half-ended experiments at once —
        whoever began ending them is most likely the leader that died.
        """
        with self.rt.store.read() as session:
            live = list_active(session=session)
        now = self.rt.now()
        seen: set[str] = set()
        for experiment in live:
            seen.add(experiment.id)
            try:
                self._sync_one(experiment, now, first=first)
            except Exception:
                # One experiment that cannot be armed must not leave the others unarmed; the
                # reaper still ends it from its annotation.
                log.exception("cannot arm the expiry of %s; the reaper covers it", experiment.id)
        with self._lock:
            gone = [
                i for i in self._armed if i not in seen and i not in self._running and i not in self._retrying
            ]
        for experiment_id in gone:
            self._disarm(experiment_id)

    def _sync_one(self, experiment: Experiment, now: datetime, *, first: bool) -> None:
        if experiment.state == ExperimentState.ENDING:
            self._half_ended(experiment, at_once=first)
            return
        with self._lock:
            self._ending_seen.pop(experiment.id, None)
        if experiment.expires_at is None:
            return
        with self._lock:
            armed = self._armed.get(experiment.id)
            busy = experiment.id in self._running or experiment.id in self._retrying
        if busy:
            return
        if armed is None or armed.expires_at != experiment.expires_at:
            self._arm(experiment, now)
        elif experiment.expires_at <= now - timedelta(seconds=2) and not self.rt.has_job(
            _job("expire", experiment.id)
        ):
            # Armed, overdue, and its job gone: it ran while the store was unreachable.
            self._submit(experiment.id, self._reason(experiment))

    def _reason(self, experiment: Experiment) -> EndReason:
        since = self.rt.leader_since
        expires = experiment.expires_at
        if since is not None and expires is not None and expires < since:
            return EndReason.REVERTED_AFTER_RESTART
        return EndReason.EXPIRED

    def _arm(self, experiment: Experiment, now: datetime) -> None:
        assert experiment.expires_at is not None
        expires = experiment.expires_at
        armed = _Armed(experiment, expires)
        settings = self.rt.settings
        lead = timedelta(seconds=settings.reminder_lead_seconds)
        started = experiment.started_at or now
        if lead and expires - lead > now and expires - started > lead:
            armed.reminder_at = expires - lead
        armed.nudge_at = self._next_nudge(experiment, now)
        with self._lock:
            self._armed[experiment.id] = armed
        self.rt.add_job(
            jobs.expire, _job("expire", experiment.id), expires, experiment.id, self._reason(experiment)
        )
        if armed.reminder_at is not None:
            self.rt.add_job(
                jobs.remind, _job("remind", experiment.id), armed.reminder_at, experiment.id, "end"
            )
        else:
            self.rt.remove_job(_job("remind", experiment.id))
        if armed.nudge_at is not None:
            self.rt.add_job(jobs.remind, _job("nudge", experiment.id), armed.nudge_at, experiment.id, "nudge")
        else:
            self.rt.remove_job(_job("nudge", experiment.id))

    def _next_nudge(self, experiment: Experiment, now: datetime) -> datetime | None:
        every = timedelta(seconds=self.rt.settings.nudge_every_seconds)
        if not every or experiment.started_at is None or experiment.expires_at is None:
            return None
        stop = experiment.expires_at - timedelta(seconds=self.rt.settings.reminder_lead_seconds)
        elapsed = max(timedelta(0), now - experiment.started_at)
        nudge = experiment.started_at + every * (elapsed // every + 1)
        return nudge if nudge < stop and nudge < experiment.expires_at else None

    def _disarm(self, experiment_id: str) -> None:
        with self._lock:
            self._armed.pop(experiment_id, None)
            self._attempts.pop(experiment_id, None)
        for kind in ("expire", "remind", "nudge"):
            self.rt.remove_job(_job(kind, experiment_id))

    def _submit(self, experiment_id: str, reason: EndReason) -> None:
        self.rt.add_job(
            jobs.expire, _job("expire", experiment_id), self.rt.now(), experiment_id, reason.value
        )

    def _half_ended(self, experiment: Experiment, *, at_once: bool) -> None:
        with self._lock:
            if experiment.id in self._running or experiment.id in self._retrying:
                return
            first = self._ending_seen.setdefault(experiment.id, time.monotonic())
            self._armed.setdefault(experiment.id, _Armed(experiment, experiment.expires_at or self.rt.now()))
        if at_once or time.monotonic() - first >= ENDING_GRACE.total_seconds():
            log.warning("experiment %s was left ending; ending it", experiment.id)
            with self._lock:
                self._ending_seen.pop(experiment.id, None)
            self._submit(experiment.id, EndReason(experiment.end_reason or EndReason.EXPIRED))

    # ------------------------------------------------------------------ the expiry job

    def run_expiry(self, experiment_id: str, reason: str) -> None:
        with self._lock:
            if experiment_id in self._running:
                return
            self._running.add(experiment_id)
            self._retrying.discard(experiment_id)
        try:
            self._end(experiment_id, EndReason(reason))
        except Exception:
            log.exception("ending %s failed unexpectedly; retrying", experiment_id)
            self._retry(experiment_id, EndReason(reason))
        finally:
            with self._lock:
                self._running.discard(experiment_id)

    def _end(self, experiment_id: str, reason: EndReason) -> None:
        now = self.rt.now()
        try:
            claim = self._claims.submit(experiment_id, (reason, now))
        except DATABASE_ERRORS as exc:
            log.warning(
                "the store is unavailable while %s expires (%s); clearing from the cluster",
                experiment_id,
                str(exc).splitlines()[0],
            )
            self._clear_without_store(experiment_id, reason, now)
            return
        try:
            experiment = self._ours(claim)
            report = ending.clear_experiment(self.rt.kube_for(experiment.cluster), experiment)
        except ending.PermanentError as exc:
            stale = exc.claim.experiment
            if exc.claim.verdict == Verdict.EXTENDED and stale is not None:
                self._arm(stale, now)  # extended since this job was armed
            else:
                self._disarm(experiment_id)  # ended by someone else, or never applied
            return
        except ending.TemporaryError as exc:
            self._failed_attempt(experiment, reason, exc)
            return
        with self._lock:
            attempts = self._attempts.pop(experiment_id, 0)
        removed = ending.describe_removed(report)
        if claim.verdict == Verdict.FAILED:
            # Escalated earlier: the record stays failed (what went wrong), the fault is gone now.
            message = f"{experiment_id}: the fault is gone after {attempts + 1} attempts: {removed}"
            ending.record(self.rt.store, verb=VERB, message=message, experiment=experiment)
            self._tell(experiment, f"✅ {message}", final=True)
            self._disarm(experiment_id)
            return
        how = "reverted after a restart" if reason == EndReason.REVERTED_AFTER_RESTART else "expired"
        expired = experiment.expires_at or now
        message = f"{experiment_id} {how} (due {expired:%H:%M:%S} UTC): {removed}"
        if attempts:
            message += f" ({attempts + 1} attempts)"
        try:
            ended: Experiment = self._ends.submit(experiment_id, (message, now))
        except InvalidTransition:
            ended = experiment  # ended by someone else meanwhile (a user's clear taking it over)
        except DATABASE_ERRORS:
            # The fault is gone; the record stays `ending` and a later sync ends it.
            log.exception("the fault of %s is gone but its record could not be ended", experiment_id)
            ended = experiment
        self._tell(ended, f"⏹ Experiment {message}", final=True)
        self._disarm(experiment_id)
        if self.after_end is not None and ended.state == ExperimentState.ENDED:
            self.after_end(ended, how)

    def _ours(self, claim: Claim) -> Experiment:
        """The claimed experiment, when this job is the one to clear it; PermanentError otherwise.
        A failed one is ours only while we retry it (it failed on our watch)."""
        with self._lock:
            retrying = claim.experiment_id in self._attempts
        ours = {Verdict.CLAIMED, Verdict.ENDING} | ({Verdict.FAILED} if retrying else set())
        if claim.verdict not in ours or claim.experiment is None:
            raise ending.PermanentError(claim)
        return claim.experiment

    def _claim_batch(self, batch: Sequence[tuple[str, tuple[EndReason, datetime]]]) -> dict[str, object]:
        # Ids in order, so two batches (on PostgreSQL) lock rows in the same order.
        with self.rt.store.write() as session:
            return {
                experiment_id: ending.claim_in(session, experiment_id, reason=reason, by=SCHEDULER, due=now)
                for experiment_id, (reason, now) in sorted(batch, key=lambda item: item[0])
            }

    def _end_batch(self, batch: Sequence[tuple[str, tuple[str, datetime]]]) -> dict[str, object]:
        results: dict[str, object] = {}
        with self.rt.store.write() as session:
            for experiment_id, (message, now) in sorted(batch, key=lambda item: item[0]):
                try:
                    results[experiment_id] = ending.end_in(
                        session, experiment_id, by=SCHEDULER, now=now, verb=VERB, message=message
                    )
                except InvalidTransition as exc:  # checked before anything is written
                    results[experiment_id] = exc
        return results

    def _clear_without_store(self, experiment_id: str, reason: EndReason, now: datetime) -> None:
        with self._lock:
            armed = self._armed.get(experiment_id)
        if armed is None:
            log.error(
                "cannot clear %s: the store is unavailable and nothing was armed for it; the reaper will",
                experiment_id,
            )
            return
        experiment = armed.experiment
        try:
            marks = [
                m
                for m in list_marked_faults(self.rt.kube_for(experiment.cluster), experiment.namespace)
                if m.experiment_id == experiment_id
            ]
        except MeshError as exc:
            self._failed_attempt(experiment, reason, exc, store=False)
            return
        if not marks:
            self._tell(
                experiment,
                f"⏹ Experiment {experiment_id} ended; its fault was no longer in "
                "the cluster (the store is unavailable; its record is updated later)",
                final=True,
            )
            return
        latest = max(m.expires for m in marks)
        if latest > now:
            # Extended: the annotation holds the new expiry, truncated to the second.
            with self._lock:
                armed.expires_at = latest + timedelta(seconds=1)
            self.rt.add_job(
                jobs.expire, _job("expire", experiment_id), armed.expires_at, experiment_id, reason.value
            )
            return
        try:
            report = ending.clear(
                self.rt.kube_for(experiment.cluster),
                namespace=experiment.namespace,
                experiment_id=experiment_id,
                vs_names=sorted({m.vs_name for m in marks}),
            )
        except ending.TemporaryError as exc:
            self._failed_attempt(experiment, reason, exc, store=False)
            return
        with self._lock:
            self._attempts.pop(experiment_id, None)
        removed = ending.describe_removed(report)
        log.warning("cleared %s without the store: %s", experiment_id, removed)
        self._tell(
            experiment,
            f"⏹ Experiment {experiment_id} expired: {removed} (the store is unavailable; "
            "its record is updated once it is back)",
            final=True,
        )

    # ------------------------------------------------------------------ failures

    def _failed_attempt(
        self, experiment: Experiment, reason: EndReason, exc: Exception, *, store: bool = True
    ) -> None:
        settings = self.rt.settings
        with self._lock:
            attempts = self._attempts[experiment.id] = self._attempts.get(experiment.id, 0) + 1
        log.warning("attempt %d to clear %s failed: %s", attempts, experiment.id, exc)
        if attempts == settings.revert_escalate_after:
            self._escalate(experiment, attempts, exc, store=store)
        self._retry(experiment.id, reason)

    def _retry(self, experiment_id: str, reason: EndReason) -> None:
        settings = self.rt.settings
        with self._lock:
            attempts = max(1, self._attempts.get(experiment_id, 1))
            self._retrying.add(experiment_id)
        delay = min(settings.revert_retry_initial_seconds * 2 ** (attempts - 1), _retry_ceiling(settings))
        self.rt.add_job(
            jobs.expire,
            _job("expire", experiment_id),
            self.rt.now() + timedelta(seconds=delay),
            experiment_id,
            reason.value,
        )

    def _escalate(self, experiment: Experiment, attempts: int, exc: Exception, *, store: bool) -> None:
        vs = ", ".join(str(v.get("name")) for v in experiment.virtual_services or []) or "?"
        detail = (
            f"could not remove the fault after {attempts} attempts: {exc}. meshbot keeps retrying (every "
            f"{_short(timedelta(seconds=_retry_ceiling(self.rt.settings)))} at most); to stop it by "
            f"hand, `fault clear {experiment.id}` or remove routes meshbot-{experiment.id}* from "
            f"VirtualService {vs} in {experiment.namespace}"
        )
        failed = experiment
        if store:
            try:
                with self.rt.store.write() as session:
                    failed = mark_failed(
                        session=session, experiment_id=experiment.id, detail=detail, now=self.rt.now()
                    )
            except InvalidTransition:
                pass  # ended by someone else meanwhile
            except DATABASE_ERRORS:
                log.exception("could not mark %s failed", experiment.id)
            ending.record(self.rt.store, verb=VERB, message=detail, experiment=failed, outcome=Outcome.ERROR)
        log.error("experiment %s: %s", experiment.id, detail)
        self._tell(
            failed, f"🚨 Experiment {experiment.id} is still injecting its fault: {detail}", final=True
        )

    # ------------------------------------------------------------------ reminders

    def run_reminder(self, experiment_id: str, kind: str) -> None:
        try:
            with self.rt.store.read() as session:
                experiment = get_experiment(session=session, experiment_id=experiment_id)
        except _GONE_OR_DOWN:
            return
        if experiment.state != ExperimentState.ACTIVE or experiment.expires_at is None:
            return
        now = self.rt.now()
        left = experiment.expires_at - now
        if left <= timedelta(0):
            return
        what = f"{experiment.kind} on {experiment.service}.{experiment.namespace}"
        hint = (
            f"extend with `fault extend {experiment_id} <duration>`, "
            f"stop now with `fault clear {experiment_id}`"
        )
        if kind == "nudge":
            running = now - (experiment.started_at or now)
            text = (
                f"⏳ Experiment {experiment_id} ({what}) has been running for {_short(running)}; "
                f"it ends in {_short(left)}. To stop early: `fault clear {experiment_id}`."
            )
            nudge = self._next_nudge(experiment, now)
            with self._lock:
                armed = self._armed.get(experiment_id)
                if armed is not None:
                    armed.nudge_at = nudge
            if nudge is not None:
                self.rt.add_job(jobs.remind, _job("nudge", experiment_id), nudge, experiment_id, "nudge")
            self._tell(experiment, text)
            return
        text = f"⏰ Experiment {experiment_id} ({what}) ends in {_short(left)} — {hint}."
        buttons = (
            Button("Extend 10 min", EXTEND_ACTION, experiment_id, style="primary"),
            Button("Stop now", STOP_ACTION, experiment_id, style="danger"),
        )
        self._tell(experiment, text, buttons=buttons)

    def _tell(
        self, experiment: Experiment, text: str, *, final: bool = False, buttons: tuple[Button, ...] = ()
    ) -> None:
        notifier = self.rt.notifier
        deliver(
            experiment.id, lambda: notifier.experiment_event(experiment, text, final=final, buttons=buttons)
        )


# A fault being retried is one that should already be gone (overdue, or stopped by a person). Backing
# off to revert_retry_max_seconds (30 s) left it live up to 29 s after a partial outage ended (only
# VirtualService writes failing, the Lease healthy, so no step-down and no reconcile), and the reaper
# skips experiments with a retry pending. One PATCH a second per such fault keeps it within ~1 s of
# the API taking writes again, at a cost the API server can bear.
OVERDUE_RETRY_CEILING_SECONDS = 1.0


def _retry_ceiling(settings: Settings) -> float:
    return min(settings.revert_retry_max_seconds, OVERDUE_RETRY_CEILING_SECONDS)
