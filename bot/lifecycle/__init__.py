"""The experiment lifecycle: faults end on time whatever happens; reminders; scheduled faults.

One entry point, built where the service starts (the FastAPI lifespan, or ``meshbot lifecycle``)::

    lifecycle = Lifecycle(pipeline, pipeline.kube, pipeline.store, notifier, settings)
    lifecycle.start()   # returns at once; elects a leader in the background
    ...
    lifecycle.stop()    # steps down and releases the lease, so another replica takes over at once

Every replica builds one; the replica holding the Lease (mesh.lease) runs the scheduler.
On becoming leader it reconciles: experiments that expired while no leader ran are reverted at
once (``reverted after restart``), the others are armed, half-ended ones finished, missed schedule
runs reported, and one reaper pass sweeps the cluster.

Scheduler: APScheduler 3's **BackgroundScheduler** with a thread pool, not the AsyncIOScheduler.
Everything a job does is blocking — the kubernetes client, SQLAlchemy sessions, ``Pipeline.run`` —
so on an asyncio scheduler each job would either block the event loop that serves Slack or need
wrapping in ``run_in_executor`` anyway; and an expiry must not wait behind a busy event loop. A
scheduler thread of its own keeps expiry timing independent of the web server, and it runs the
same way under FastAPI and in the standalone CLI, which has no event loop. The job store is
APScheduler's in-memory one: the store's experiments and schedules tables are the truth, re-read
at every start and every ``lifecycle_sync_seconds``, so there is no second copy to drift.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.authz import RoleAuthorizer, ScheduleOwners
from bot.lifecycle import jobs
from bot.lifecycle.cards import post_report_card
from bot.lifecycle.charts import LaterCharts
from bot.lifecycle.digest import digest_text
from bot.lifecycle.expiry import Expiries
from bot.lifecycle.guards import GuardRunner
from bot.lifecycle.notify import BackgroundNotifier, Button, LogNotifier, Notifier, RecordingNotifier, deliver
from bot.lifecycle.reaper import ReapReport, reap
from bot.lifecycle.runtime import Runtime
from bot.lifecycle.schedules import ScheduleRunner
from bot.pipeline import Authorizer, Pipeline
from core.clock import utcnow
from core.settings import Settings
from core.store import Store, list_failed
from domain.ending import DATABASE_ERRORS
from mesh.errors import MeshError
from mesh.kube import Kube
from mesh.lease import LeaseElector, LeaseRecord

__all__ = [
    "DIGEST_JOB",
    "Button",
    "Lifecycle",
    "LogNotifier",
    "Notifier",
    "ReapReport",
    "RecordingNotifier",
    "reap",
]

log = logging.getLogger(__name__)

SYNC_JOB = "lifecycle:sync"
REAP_JOB = "lifecycle:reap"
REAP_SOON_JOB = "lifecycle:reap-soon"
RECONCILE_JOB = "lifecycle:reconcile"
DIGEST_JOB = "lifecycle:digest"


def default_identity() -> str:
    """hostname:pid — unique among replicas (pod names) and among processes on one machine, and
    the same for a container restarted in its pod (pid 1), which so takes its lease back at once."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Lifecycle:
    def __init__(
        self,
        pipeline: Pipeline,
        kube: Kube,
        store: Store,
        notifier: Notifier,
        settings: Settings,
        *,
        identity: str | None = None,
        clock: Callable[[], datetime] | None = None,
        authorize_runs: Authorizer | None = None,
    ) -> None:
        self.settings = settings
        self.identity = identity or settings.lifecycle_identity or default_identity()
        self._notifier = BackgroundNotifier(notifier, name=f"notify-{self.identity}")
        self.rt = Runtime(
            pipeline=pipeline,
            kube=kube,
            store=store,
            notifier=self._notifier,
            settings=settings,
            instance=f"lifecycle-{uuid.uuid4().hex[:10]}",
            clock=clock or utcnow,
            cluster=pipeline.cluster,
            # Scheduled runs are checked as their owner; Slack user groups when the app has them.
            authorize_runs=authorize_runs or ScheduleOwners(RoleAuthorizer()),
        )
        self.charts = LaterCharts()
        self.expiries = Expiries(
            self.rt, after_end=lambda e, how: post_report_card(self.rt, e, how, self.charts)
        )
        self.guards = GuardRunner(
            self.rt, after_end=lambda e, how: post_report_card(self.rt, e, how, self.charts)
        )
        self.schedules = ScheduleRunner(self.rt)
        self._state_lock = threading.RLock()
        self._leading = threading.Event()
        self._started = False
        self._elector: LeaseElector | None = None
        if settings.leader_election:
            self._elector = LeaseElector(
                kube,
                namespace=settings.lease_namespace,
                name=settings.lease_name,
                identity=self.identity,
                lease_duration=settings.lease_duration_seconds,
                renew_deadline=settings.lease_renew_deadline_seconds,
                retry_period=settings.lease_retry_seconds,
                on_started=self._become_leader,
                on_stopped=self._step_down,
            )

    # ------------------------------------------------------------------ public API

    @property
    def is_leader(self) -> bool:
        return self._leading.is_set()

    def election_problem(self) -> str | None:
        """Why this replica cannot take the Lease right now (a missing namespace, no RBAC)."""
        return self._elector.last_error if self._elector is not None else None

    def start(self) -> None:
        """Start in the background: elect (or, without leader election, lead at once)."""
        with self._state_lock:
            if self._started:
                return
            self._started = True
        if not self._notifier.alive:  # started again after a stop
            self._notifier = BackgroundNotifier(self._notifier.notifier, name=f"notify-{self.identity}")
            self.rt.notifier = self._notifier
        jobs.register(self.rt.instance, self)
        if self._elector is not None:
            self._elector.start()
        else:
            self._become_leader(None)

    def stop(self) -> None:
        """Step down and release the lease; running jobs finish (a revert is never cut in half)."""
        with self._state_lock:
            if not self._started:
                return
            self._started = False
        # Finish running reverts before the lease goes, so a successor never races them.
        self._step_down(wait=True)
        if self._elector is not None:
            self._elector.stop(release=True)
        jobs.unregister(self.rt.instance)
        self.charts.stop()
        self._notifier.close()

    def abandon(self) -> None:
        """Stop at once as a crashed process would: no release, nothing more done. The lease
        stays held until it lapses. For tests and failover drills."""
        with self._state_lock:
            self._started = False
        jobs.unregister(self.rt.instance)
        if self._elector is not None:
            self._elector.abandon()
        self._step_down(wait=False)

    # What the scheduler's jobs call (bot.lifecycle.jobs), each on the part that does it.

    def run_expiry(self, experiment_id: str, reason: str) -> None:
        self.expiries.run_expiry(experiment_id, reason)

    def run_reminder(self, experiment_id: str, kind: str) -> None:
        self.expiries.run_reminder(experiment_id, kind)

    def run_guard(self, experiment_id: str) -> None:
        self.guards.run(experiment_id)

    def run_schedule(self, schedule_id: str, run_at: str) -> None:
        self.schedules.run(schedule_id, run_at)

    def remind_schedule(self, schedule_id: str, run_at: str) -> None:
        self.schedules.remind(schedule_id, run_at)

    def wait_until_leader(self, timeout: float) -> bool:
        return self._leading.wait(timeout)

    # ------------------------------------------------------------------ leadership

    def _become_leader(self, previous: LeaseRecord | None) -> None:
        with self._state_lock:
            if self._leading.is_set():
                return
            settings = self.settings
            scheduler = BackgroundScheduler(
                executors={"default": ThreadPoolExecutor(settings.lifecycle_workers)},
                job_defaults={
                    # Never drop an expiry for being late: a late revert beats none. Schedules
                    # judge lateness themselves (missed runs are reported, not run).
                    "misfire_grace_time": None,
                    "coalesce": True,
                    "max_instances": 1,
                },
                timezone="UTC",
            )
            scheduler.start()
            self.rt.scheduler = scheduler
            self.rt.leader_since = self.rt.now()
            self._leading.set()
        if previous is not None and previous.holder:
            log.warning("took over from %s (last renewed %s)", previous.holder, previous.renew_time)
        scheduler.add_job(
            jobs.reconcile, "date", id=RECONCILE_JOB, args=[self.rt.instance], replace_existing=True
        )

    def _step_down(self, wait: bool = False) -> None:
        with self._state_lock:
            scheduler = self.rt.scheduler
            self.rt.scheduler = None
            self._leading.clear()
        if scheduler is not None:
            try:
                scheduler.shutdown(wait=wait)
            except Exception:  # already shut down
                log.debug("scheduler shutdown", exc_info=True)
        self.expiries.reset()
        self.guards.reset()
        self.schedules.reset()

    def reconcile(self) -> None:
        """First thing a new leader does; then the periodic jobs take over."""
        try:
            self.expiries.sync(first=True)
        except DATABASE_ERRORS:
            log.exception(
                "cannot read the experiments to reconcile; the reaper covers until the store is back"
            )
        try:
            self.guards.sync()
        except DATABASE_ERRORS:
            log.exception("cannot read the experiments to arm their guards")
        try:
            self.schedules.sync()
        except DATABASE_ERRORS:
            log.exception("cannot read the schedules to reconcile")
        self.reap_now()
        scheduler = self.rt.scheduler
        if scheduler is None:
            return
        instance = [self.rt.instance]
        scheduler.add_job(
            jobs.sync,
            "interval",
            seconds=self.settings.lifecycle_sync_seconds,
            id=SYNC_JOB,
            args=instance,
            replace_existing=True,
        )
        scheduler.add_job(
            jobs.reap,
            "interval",
            seconds=self.settings.lifecycle_reaper_seconds,
            id=REAP_JOB,
            args=instance,
            replace_existing=True,
        )
        digest = self.rt.pipeline.policy.digest
        if digest is not None:
            hour, minute = (int(part) for part in digest.at.split(":"))
            scheduler.add_job(
                jobs.digest,
                CronTrigger(hour=hour, minute=minute, timezone=digest.timezone),
                id=DIGEST_JOB,
                args=instance,
                replace_existing=True,
                misfire_grace_time=3600,
            )

    def sync(self) -> None:
        try:
            self.expiries.sync()
        except DATABASE_ERRORS as exc:
            log.warning("cannot read the experiments: %s", str(exc).splitlines()[0])
        try:
            self.guards.sync()
        except DATABASE_ERRORS as exc:
            log.warning("cannot read the guarded experiments: %s", str(exc).splitlines()[0])
        try:
            self.schedules.sync()
        except DATABASE_ERRORS as exc:
            log.warning("cannot read the schedules: %s", str(exc).splitlines()[0])
        try:
            self._watch_failed_starts()
        except DATABASE_ERRORS as exc:
            log.warning("cannot read the failed experiments: %s", str(exc).splitlines()[0])

    def reap_now(self) -> ReapReport | None:
        """One reaper pass over every configured cluster, leaving alone what the expiry jobs are
        already ending; the report is the default cluster's (None when it could not be swept)."""
        default: ReapReport | None = None
        soonest: datetime | None = None
        for cluster in self.rt.cluster_names():
            try:
                report = reap(
                    self.rt.kube_for(cluster),
                    self.rt.store,
                    now=self.rt.now(),
                    grace=timedelta(seconds=self.settings.lifecycle_reaper_grace_seconds),
                    notifier=self.rt.notifier,
                    claimed=self.expiries.owns,
                    cluster=cluster,
                )
            except MeshError as exc:
                # One unreachable cluster must not stop the sweep of the others.
                log.warning("reaper pass on cluster %s failed: %s", cluster, exc)
                continue
            for line in report.lines()[:-1]:
                log.info("reaper (%s): %s", cluster, line)
            if report.next_due_at is not None:
                soonest = min(soonest or report.next_due_at, report.next_due_at)
            if cluster == self.rt.cluster:
                default = report
        self._reap_again_at(soonest)
        return default

    def _watch_failed_starts(self) -> None:
        """A start recorded as failed may still land in the cluster (a write answered after the
        client gave up). No expiry job ends such a fault; the reaper does, from its annotation —
        so sweep when it would fall due, not up to a whole reaper interval later."""
        now = self.rt.now()
        horizon = self.settings.lifecycle_reaper_seconds
        with self.rt.store.read() as session:
            recent = list_failed(session=session, since=now - self.rt.pipeline.policy.faults.max_duration)
        grace = timedelta(seconds=self.settings.lifecycle_reaper_grace_seconds)
        due = [
            e.created_at + timedelta(seconds=e.duration_seconds) + grace
            for e in recent
            if e.started_at is None and e.created_at is not None
        ]
        upcoming = [moment for moment in due if now < moment <= now + timedelta(seconds=horizon)]
        if upcoming and not self.rt.has_job(REAP_SOON_JOB):
            self._reap_again_at(min(upcoming))

    def _reap_again_at(self, due: datetime | None) -> None:
        """Sweep again when a fault only the reaper will end falls due, rather than up to a whole
        reaper interval later (a late-landing write of a failed start would outlive its expiry)."""
        if due is None or due > self.rt.now() + timedelta(seconds=self.settings.lifecycle_reaper_seconds):
            return
        self.rt.add_job(jobs.reap, REAP_SOON_JOB, due)

    def send_digests(self) -> None:
        digest = self.rt.pipeline.policy.digest
        if digest is None:
            return
        now = self.rt.now()
        for channel in digest.channels:
            try:
                text = digest_text(self.rt.store, channel, now=now, timezone=digest.timezone)
            except DATABASE_ERRORS:
                log.exception("cannot build the digest for %s", channel)
                continue
            if text is None and digest.skip_empty:
                continue
            message = text or "📋 meshbot daily digest: nothing ran, nothing is active or scheduled."
            self._post(channel, message)

    def _post(self, channel: str, text: str) -> None:
        notifier = self.rt.notifier
        deliver(f"a message to {channel}", lambda: notifier.channel_message(channel, text))
