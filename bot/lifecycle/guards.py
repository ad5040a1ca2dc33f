"""Guards: the leader reads each guarded experiment's telemetry every ``guard_interval`` seconds and
ends the experiment when its guards are breached twice in a row.

Armed like expiries: from the store's active experiments at every sync, so a new leader (a
restart, a fail-over) re-arms them without any state of its own. The count of breaches in a row
is the one thing kept in memory; a new leader starts it again from zero, which at worst costs
one more interval before a trip.

Ending is domain.ending's one path with this runner as its trigger (audit verb ``guard``, reason
``guard tripped``). When clearing fails the record stays ``ending`` and the expiry executor,
which owns retries, finishes it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from bot.lifecycle import jobs
from bot.lifecycle.notify import deliver
from bot.lifecycle.runtime import Runtime
from core.store import EndReason, Experiment, ExperimentNotFound, get_experiment, list_active
from core.values import ExperimentState
from domain import ending
from domain.ending import DATABASE_ERRORS, SCHEDULER
from domain.guards import Reading, guards_of, read
from mesh.prometheus import TelemetryUnavailable

log = logging.getLogger(__name__)

VERB = "guard"
BREACHES_TO_TRIP = 2


def _job(experiment_id: str) -> str:
    return f"guard:{experiment_id}"


@dataclass
class _Watch:
    breaches: int = 0
    failures: int = 0
    told_unavailable: bool = False


class GuardRunner:
    def __init__(self, rt: Runtime, after_end: Callable[[Experiment, str], object] | None = None) -> None:
        self.rt = rt
        # Called with the ended experiment and the reason's words (the report card hooks in here).
        self.after_end = after_end
        self._lock = threading.Lock()
        self._watching: dict[str, _Watch] = {}

    def reset(self) -> None:
        with self._lock:
            self._watching.clear()

    def sync(self) -> None:
        """Arm a guard job for each active guarded experiment, drop the others (raises on database
        errors, like the expiries' sync)."""
        if self.rt.pipeline.prometheus is None:
            return
        with self.rt.store.read() as session:
            live = [e for e in list_active(session=session) if e.guards and e.state == ExperimentState.ACTIVE]
        wanted = {e.id for e in live}
        with self._lock:
            new = wanted - set(self._watching)
            gone = set(self._watching) - wanted
            for experiment_id in new:
                self._watching[experiment_id] = _Watch()
            for experiment_id in gone:
                self._watching.pop(experiment_id, None)
        for experiment_id in new:
            self._arm(experiment_id)
        for experiment_id in gone:
            self.rt.remove_job(_job(experiment_id))

    def _arm(self, experiment_id: str) -> None:
        scheduler = self.rt.scheduler
        if scheduler is None:
            return
        try:
            scheduler.add_job(
                jobs.guard,
                "interval",
                seconds=self.rt.settings.guard_interval,
                id=_job(experiment_id),
                args=[self.rt.instance, experiment_id],
                replace_existing=True,
            )
        except RuntimeError:  # shutting down (stepping down)
            log.debug("not arming the guard of %s: the scheduler is shutting down", experiment_id)

    def _drop(self, experiment_id: str) -> None:
        with self._lock:
            self._watching.pop(experiment_id, None)
        self.rt.remove_job(_job(experiment_id))

    # ------------------------------------------------------------------ one evaluation

    def run(self, experiment_id: str) -> None:
        prometheus = self.rt.pipeline.prometheus
        try:
            with self.rt.store.read() as session:
                experiment = get_experiment(session=session, experiment_id=experiment_id)
        except ExperimentNotFound:
            self._drop(experiment_id)
            return
        except DATABASE_ERRORS:
            return  # the next interval tries again; the expiry still ends it on time
        if experiment.state != ExperimentState.ACTIVE or prometheus is None:
            self._drop(experiment_id)
            return
        with self._lock:
            watch = self._watching.setdefault(experiment_id, _Watch())
        try:
            readings = [read(prometheus, guard, experiment) for guard in guards_of(experiment)]
        except TelemetryUnavailable as exc:
            self._unavailable(experiment, watch, str(exc))
            return
        watch.failures = 0
        breached = [r for r in readings if r.breached]
        watch.breaches = watch.breaches + 1 if breached else 0
        if watch.breaches >= BREACHES_TO_TRIP:
            why = "; ".join(r.text() for r in breached)
            self._end(
                experiment,
                f"its guard tripped ({watch.breaches} evaluations in a row, every "
                f"{self.rt.settings.guard_interval:g}s): {why}",
                breached,
            )

    def _unavailable(self, experiment: Experiment, watch: _Watch, why: str) -> None:
        policy = self.rt.pipeline.policy.guards
        watch.failures += 1
        log.warning("guards of %s cannot be read (%d in a row): %s", experiment.id, watch.failures, why)
        if watch.failures < policy.unavailable_after:
            return
        if policy.on_unavailable == "stop":
            self._end(
                experiment,
                f"its guards could not be checked {watch.failures} times in a row ({why}); "
                "the policy stops a fault it cannot watch",
                [],
            )
            return
        if not watch.told_unavailable:
            watch.told_unavailable = True
            self._tell(
                experiment,
                f"⚠ Experiment {experiment.id}: its guards cannot be checked ({why}); the policy lets it "
                "run on unguarded until it ends",
            )

    def _end(self, experiment: Experiment, why: str, readings: list[Reading]) -> None:
        try:
            ended = ending.end(
                self.rt.kube_for(experiment.cluster),
                self.rt.store,
                experiment.id,
                namespace=experiment.namespace,
                vs_names=ending.vs_names(experiment),
                reason=EndReason.GUARD_TRIPPED,
                by=SCHEDULER,
                now=self.rt.now(),
                verb=VERB,
                message=lambda removed: f"{experiment.id} ended: {why}; {removed}",
            )
        except ending.PermanentError:
            self._drop(experiment.id)  # ended by someone or something else meanwhile
            return
        except ending.TemporaryError as exc:
            self._drop(experiment.id)
            self._tell(
                experiment,
                f"🛡 Experiment {experiment.id}: {why}. Clearing it failed ({exc}); meshbot keeps trying.",
            )
            return
        except DATABASE_ERRORS:
            log.exception("the guard of %s could not claim it; trying again next interval", experiment.id)
            return
        self._drop(experiment.id)
        final = ended.experiment or experiment
        self._tell(final, f"🛡 Experiment {experiment.id} stopped early: {why}. {ended.removed}.", final=True)
        if self.after_end is not None:
            self.after_end(final, "stopped by its guard")

    def _tell(self, experiment: Experiment, text: str, *, final: bool = False) -> None:
        notifier = self.rt.notifier
        deliver(experiment.id, lambda: notifier.experiment_event(experiment, text, final=final))
