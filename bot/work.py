"""Bounded lanes for the synchronous work behind Slack's acknowledgements.

The pipeline is synchronous (the Kubernetes client, SQLAlchemy), so it runs in threads. Each lane
is its own thread pool with a fixed number of places (workers plus a short queue): a request takes
a place before it is acknowledged, or hears at once that meshbot is busy. Nothing here blocks the
event loop, and no lane shares threads with another or with asyncio's default executor (which
``/readyz`` and ``/metrics`` use), so a flood of `status` fills the command lane and nothing else:

- ``commands``: every typed command;
- ``urgent``: what ends or extends a fault — Stop, Extend, Confirm/Approve/Cancel, `fault clear`,
  `fault extend` — so ending a fault never waits behind reads; while urgent work runs, commands
  not yet started wait for it (``Priority``): threads of one process share one interpreter lock,
  and on two cores three busy `status` threads otherwise slow a Stop down fourfold;
- ``store``: the front's own small reads and writes (delivery claims, questions, thread records).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

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


# The longest a command waits for urgent work before starting anyway: a stream of Stops must not
# starve everyone else.
LONGEST_YIELD_SECONDS = 1.0


class Priority:
    """Urgent work under way holds back the start of new commands (those running go on)."""

    def __init__(self) -> None:
        self._urgent = 0
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def urgent(self) -> Iterator[None]:
        with self._changed:
            self._urgent += 1
        try:
            yield
        finally:
            with self._changed:
                self._urgent -= 1
                self._changed.notify_all()

    def yield_to_urgent(self, longest: float = LONGEST_YIELD_SECONDS) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._urgent == 0, timeout=longest)

    def as_urgent(self, call: Callable[[], T]) -> T:
        with self.urgent():
            return call()

    def after_urgent(self, call: Callable[[], T]) -> T:
        self.yield_to_urgent()
        return call()


class Around(Protocol):
    """Runs a piece of work in its worker thread, doing something before or around it."""

    def __call__(self, call: Callable[[], T], /) -> T: ...


class Lane:
    """A thread pool that accepts at most ``workers + queue`` pieces of work at a time.
    ``around`` wraps each piece of work in its thread (see ``Priority``)."""

    def __init__(
        self,
        name: str,
        sizes: LaneSizes,
        around: Around | None = None,
    ) -> None:
        self.name = name
        self._around = around
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
        call: Callable[[], T] = functools.partial(fn, *args, **kwargs)
        if self._around is not None:
            call = functools.partial(self._around, call)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

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
        self.priority = Priority()
        self.commands = Lane("commands", commands, around=self.priority.after_urgent)
        self.urgent = Lane("urgent", urgent, around=self.priority.as_urgent)
        # The store lane never refuses: its work is a few milliseconds and comes from admitted work.
        self.store = Lane("store", store)

    def for_command(self, text: str) -> Lane:
        return self.urgent if urgent_command(text) else self.commands

    def shutdown(self) -> None:
        for lane in (self.commands, self.urgent, self.store):
            lane.shutdown()
