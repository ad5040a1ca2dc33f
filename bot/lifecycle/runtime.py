"""What the lifecycle's parts share: the clients, the notifier, the settings, the clock, and the
scheduler while this replica leads."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from bot.lifecycle.notify import Notifier
from bot.pipeline import Authorizer, Pipeline
from core.clock import utcnow
from core.settings import Settings
from core.store import Store
from mesh.kube import Kube

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    pipeline: Pipeline
    kube: Kube
    store: Store
    notifier: Notifier
    settings: Settings
    instance: str
    clock: Callable[[], datetime] = utcnow
    cluster: str = "default"
    # Who may run what when a schedule fires (bot.authz.ScheduleOwners in the service).
    authorize_runs: Authorizer | None = None
    # Set while this replica leads; None otherwise, which turns every job into a no-op.
    scheduler: BackgroundScheduler | None = field(default=None, repr=False)
    # When this replica became leader: experiments that expired before it were missed by the
    # previous one (or while none ran), and end as "reverted after restart".
    leader_since: datetime | None = None

    def now(self) -> datetime:
        return self.clock()

    def runs(self) -> Pipeline:
        """The pipeline a scheduled run goes through: the service's, with the run's owner checked
        against the roles of the policy as it is now."""
        if self.authorize_runs is None:
            return self.pipeline
        return replace(self.pipeline, authorize=self.authorize_runs)

    def kube_for(self, cluster: str | None) -> Kube:
        """The client of the cluster an experiment runs on (its record names it)."""
        clusters = self.pipeline.clusters
        if clusters is None or cluster is None or cluster == self.cluster:
            return self.kube
        return clusters.kube(cluster)

    def cluster_names(self) -> list[str]:
        clusters = self.pipeline.clusters
        return clusters.names if clusters is not None else [self.cluster]

    def real(self, moment: datetime) -> datetime:
        """The wall-clock time at which APScheduler must fire for ``moment`` on our clock.

        APScheduler runs on the wall clock; tests may give the lifecycle a clock that runs ahead
        (to reach a cron minute without waiting for it), so jobs are shifted by the difference.
        """
        if self.clock is utcnow:
            return moment
        return moment - (self.clock() - datetime.now(UTC))

    def add_job(
        self,
        func: Callable[..., Any],
        job_id: str,
        at: datetime,
        *args: Any,
    ) -> None:
        """Fire ``func(instance, *args)`` at ``at`` (at once when it has passed), replacing any job
        of the same id. Does nothing unless this replica leads."""
        scheduler = self.scheduler
        if scheduler is None:
            return
        try:
            scheduler.add_job(
                func,
                "date",
                run_date=self.real(at),
                id=job_id,
                args=[self.instance, *args],
                replace_existing=True,
            )
        except RuntimeError:  # shut down in between (stepping down)
            log.debug("not adding job %s: the scheduler is shutting down", job_id)

    def remove_job(self, job_id: str) -> None:
        scheduler = self.scheduler
        if scheduler is None:
            return
        with contextlib.suppress(JobLookupError):
            scheduler.remove_job(job_id)

    def has_job(self, job_id: str) -> bool:
        scheduler = self.scheduler
        return scheduler is not None and scheduler.get_job(job_id) is not None

    def seconds(self, value: float) -> timedelta:
        return timedelta(seconds=value)
