"""Is anyone going to end a fault on time? A fault is only started when the answer is yes.

This process's own lifecycle answers first (a single replica, or the demo, may lead without a
Lease); otherwise the Lease says whether another replica leads. The answer is kept for a moment
so a burst of commands costs one read of the Lease, not one each.

It lives beside the pipeline, not in bot/lifecycle/: every pipeline is built with one, and importing
the lifecycle package would bring its scheduler and every verb's dependencies with it. The Lease's
module (and with it the Kubernetes client) is imported when a fault first asks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from core.clock import utcnow
from core.settings import Settings
from mesh.kube import Kube

if TYPE_CHECKING:
    from mesh.lease import Leadership

# A lapse is judged against the Lease's own duration; a second of staleness changes nothing.
CACHE_SECONDS = 1.0


class Leading(Protocol):
    """What is asked of the local lifecycle (bot.lifecycle.Lifecycle)."""

    @property
    def is_leader(self) -> bool: ...

    @property
    def identity(self) -> str: ...

    def election_problem(self) -> str | None: ...


class LeaderWatch:
    def __init__(self, kube: Kube, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._kube = kube
        self._namespace = settings.lease_namespace
        self._name = settings.lease_name
        self._clock = clock
        # Set by whoever starts a lifecycle in this process (the app, the demo, `meshbot lifecycle`).
        self.local: Leading | None = None
        self._lock = threading.Lock()
        self._cached: tuple[float, Leadership] | None = None

    def __call__(self) -> Leadership:
        """MeshError when the API server cannot be asked (the command then fails as any would)."""
        from mesh.lease import Leadership, read_leadership

        local = self.local
        if local is not None and local.is_leader:
            return Leadership(True, holder=local.identity, renewed=self._clock())
        with self._lock:
            if self._cached is not None and time.monotonic() - self._cached[0] < CACHE_SECONDS:
                return self._cached[1]
        seen = read_leadership(self._kube, namespace=self._namespace, name=self._name, now=self._clock())
        if not seen.fresh and local is not None and local.election_problem():
            seen = Leadership(False, seen.holder, seen.renewed, problem=local.election_problem())
        with self._lock:
            self._cached = (time.monotonic(), seen)
        return seen
