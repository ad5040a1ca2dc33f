"""Report-card charts drawn once a fault's tail has passed, so the picture shows the recovery too.

The card's text goes out when the fault ends; its chart waits ``card_tail_seconds``. One thread and
a heap of due times serve every waiting chart: `fault clear all` ending fifty faults queues fifty
charts, not fifty sleeping threads, and nothing that ends a fault ever waits for a picture.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

# More waiting charts than this means something is ending faults in a loop: drop the newest
# rather than grow without bound (each card's text has already been posted).
MAX_WAITING = 200


class LaterCharts:
    def __init__(self, limit: int = MAX_WAITING) -> None:
        self.limit = limit
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def after(self, seconds: float, draw: Callable[[], None]) -> bool:
        """Run ``draw`` in ``seconds``; False when stopped or full (the chart is then not drawn)."""
        with self._changed:
            if self._stopped or len(self._due) >= self.limit:
                log.warning("a report-card chart was dropped: %d are waiting", len(self._due))
                return False
            heapq.heappush(self._due, (time.monotonic() + seconds, next(self._order), draw))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="report-card-charts", daemon=True)
                self._thread.start()
            self._changed.notify()
        return True

    @property
    def waiting(self) -> int:
        with self._changed:
            return len(self._due)

    def stop(self) -> None:
        """Charts still waiting are not drawn: their cards' text has been posted."""
        with self._changed:
            self._stopped = True
            self._due.clear()
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._stopped and (not self._due or self._due[0][0] > time.monotonic()):
                    timeout = self._due[0][0] - time.monotonic() if self._due else None
                    self._changed.wait(timeout)
                if self._stopped:
                    return
                _, _, draw = heapq.heappop(self._due)
            try:
                draw()
            except Exception:
                log.exception("a report-card chart failed")
