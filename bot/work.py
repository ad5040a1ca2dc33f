"""Bounded lanes for the synchronous work behind Slack's acknowledgements.

The pipeline is synchronous (the Kubernetes client, SQLAlchemy), so it runs in threads. Each lane
is its own thread pool with a fixed number of places (workers plus a short queue): a request takes
a place before it is acknowledged, or hears at once that meshbot is busy. Nothing here blocks the
event loop, and no lane shares threads with another or with asyncio's default executor (which
``/readyz`` and ``/metrics`` use), so a flood of `status` fills the command lane and nothing else:

- ``commands``: every typed command;
- ``urgent``: what ends or extends a fault — Stop, Extend, Confirm/Approve/Cancel, `fault clear`,
  `fault extend` — so ending a fault never waits behind reads;
- ``store``: the front's own small reads and writes (delivery claims, questions, thread records).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

# Typed commands that end or extend a fault: they take the urgent lane.
_URGENT = re.compile(r"\s*fault\s+(clear|extend)\b", re.IGNORECASE)


def urgent_command(text: str) -> bool:
    return bool(_URGENT.match(text))


@dataclass(frozen=True)
class LaneSizes:
    workers: int
    queue: int


# Two cores: more command threads than that only fight the event loop for the GIL, which is what
# delays acknowledgements; the queue absorbs a burst of a few seconds before "busy".
COMMANDS = LaneSizes(workers=3, queue=60)
URGENT = LaneSizes(workers=2, queue=40)
STORE = LaneSizes(workers=2, queue=0)


class Lane:
    """A thread pool that accepts at most ``workers + queue`` pieces of work at a time."""

    def __init__(self, name: str, sizes: LaneSizes) -> None:
        self.name = name
        self.capacity = sizes.workers + sizes.queue
        self._executor = ThreadPoolExecutor(max_workers=sizes.workers, thread_name_prefix=f"meshbot-{name}")
        self._taken = 0

    @property
    def taken(self) -> int:
        return self._taken

    def admit(self) -> Admission | None:
        """A place in this lane, or None when it is full. Called on the event loop only, so the
        count needs no lock."""
        if self._taken >= self.capacity:
            return None
        self._taken += 1
        return Admission(self)

    def _release(self) -> None:
        self._taken -= 1

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(fn, *args, **kwargs)
        )

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class Admission:
    """A place taken in a lane; given back once, when the work that took it is over."""

    def __init__(self, lane: Lane) -> None:
        self.lane = lane
        self._open = True

    def release(self) -> None:
        if self._open:
            self._open = False
            self.lane._release()

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            self.release()


class Lanes:
    def __init__(
        self, commands: LaneSizes = COMMANDS, urgent: LaneSizes = URGENT, store: LaneSizes = STORE
    ) -> None:
        self.commands = Lane("commands", commands)
        self.urgent = Lane("urgent", urgent)
        # The store lane never refuses: its work is a few milliseconds and comes from admitted work.
        self.store = Lane("store", store)

    def for_command(self, text: str) -> Lane:
        return self.urgent if urgent_command(text) else self.commands

    def shutdown(self) -> None:
        for lane in (self.commands, self.urgent, self.store):
            lane.shutdown()
