"""Group commit: threads that reach the same store step together share one transaction.

Hundreds of faults expiring in the same second each need a claim and an end — two write
transactions apiece. On SQLite writers queue for one lock and each commit syncs to disk, so
reverts would wait on one another for seconds. Here the first thread to arrive runs its step
alone; the threads that arrive meanwhile queue, and the next one to get the lock runs all their
steps in one transaction. Their cluster calls still run in parallel, in their own threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
R = TypeVar("R")


class GroupCommit(Generic[K, V, R]):
    def __init__(self, run_batch: Callable[[Sequence[tuple[K, V]]], dict[K, object]]) -> None:
        """``run_batch`` gets every queued (key, value) and returns a result or an exception for each
        key; an exception it raises applies to the whole batch (say, the transaction failed)."""
        self._run_batch = run_batch
        self._turn = threading.Lock()  # one batch at a time
        self._state = threading.Lock()
        self._queue: list[tuple[K, V]] = []
        self._results: dict[K, object] = {}

    def submit(self, key: K, value: V) -> R:
        """Run this step (in some batch) and return its result, or raise its exception. Keys must
        be unique among the steps in flight."""
        with self._state:
            self._queue.append((key, value))
        with self._turn:
            with self._state:
                done = key in self._results
                batch, self._queue = ([], self._queue) if done else (self._queue, [])
            if not done:
                try:
                    results = self._run_batch(batch)
                except Exception as exc:
                    results = {k: exc for k, _ in batch}
                missing = RuntimeError("the batch returned no result for this step")
                results = {k: results.get(k, missing) for k, _ in batch}
                with self._state:
                    self._results.update(results)
        with self._state:
            result = self._results.pop(key)
        if isinstance(result, BaseException):
            raise result
        return result  # type: ignore[return-value]
