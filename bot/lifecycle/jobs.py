"""The functions APScheduler calls: module-level, importable, arguments plain strings.

A job carries the id of the Lifecycle instance that armed it, not the instance itself, so the job
could live in a persistent job store, and a job of a lifecycle that has stopped (or stepped down)
finds nothing registered and does nothing.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

log = logging.getLogger(__name__)


class JobTarget(Protocol):
    """What the jobs call on the lifecycle that armed them (bot.lifecycle.Lifecycle)."""

    @property
    def is_leader(self) -> bool: ...

    def run_expiry(self, experiment_id: str, reason: str) -> None: ...

    def run_reminder(self, experiment_id: str, kind: str) -> None: ...

    def run_guard(self, experiment_id: str) -> None: ...

    def run_schedule(self, schedule_id: str, run_at: str) -> None: ...

    def remind_schedule(self, schedule_id: str, run_at: str) -> None: ...

    def sync(self) -> None: ...

    def reconcile(self) -> None: ...

    def reap_now(self) -> object: ...

    def send_digests(self) -> None: ...


_instances: dict[str, JobTarget] = {}
_lock = threading.Lock()


def register(instance: str, lifecycle: JobTarget) -> None:
    with _lock:
        _instances[instance] = lifecycle


def unregister(instance: str) -> None:
    with _lock:
        _instances.pop(instance, None)


def _leading(instance: str) -> JobTarget | None:
    with _lock:
        lifecycle = _instances.get(instance)
    if lifecycle is None or not lifecycle.is_leader:
        return None
    return lifecycle


def expire(instance: str, experiment_id: str, reason: str) -> None:
    lifecycle = _leading(instance)
    if lifecycle is not None:
        lifecycle.run_expiry(experiment_id, reason)


def remind(instance: str, experiment_id: str, kind: str) -> None:
    lifecycle = _leading(instance)
    if lifecycle is not None:
        lifecycle.run_reminder(experiment_id, kind)


def sync(instance: str) -> None:
    lifecycle = _leading(instance)
    if lifecycle is not None:
        lifecycle.sync()


def reconcile(instance: str) -> None:
    lifecycle = _leading(instance)
    if lifecycle is not None:
        lifecycle.reconcile()


def reap(instance: str) -> None:
    lifecycle = _leading(instance)
    if lifecycle is not None:
        lifecycle.reap_now()


def run_schedule(instance: str, schedule_id: str, run_at: str) -> None:
    lifecycle = _leading(instance)
    if lifecycle is not None:
        lifecycle.run_schedule(schedule_id, run_at)


def remind_schedule(instance: str, schedule_id: str, run_at: str) -> None:
    lifecycle = _leading(instance)
    if lifecycle is not None:
        lifecycle.remind_schedule(schedule_id, run_at)


def digest(instance: str) -> None:
    lifecycle = _leading(instance)
    if lifecycle is not None:
        lifecycle.send_digests()


def guard(instance: str, experiment_id: str) -> None:
    lifecycle = _leading(instance)
    if lifecycle is not None:
        lifecycle.run_guard(experiment_id)
