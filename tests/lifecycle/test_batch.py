"""Group commit: steps arriving together run in one batch; each caller gets its own result."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from bot.lifecycle.batch import GroupCommit


def test_steps_queued_while_a_batch_runs_share_the_next_batch() -> None:
    first_running = threading.Event()
    release = threading.Event()
    batches: list[list[int]] = []

    def run(batch: Sequence[tuple[int, int]]) -> dict[int, object]:
        batches.append([key for key, _ in batch])
        if len(batches) == 1:
            first_running.set()
            release.wait(5)
        return {key: ValueError(f"no {key}") if value < 0 else value * 10 for key, value in batch}

    group: GroupCommit[int, int, int] = GroupCommit(run)
    results: dict[int, object] = {}

    def submit(key: int, value: int) -> None:
        try:
            results[key] = group.submit(key, value)
        except ValueError as exc:
            results[key] = str(exc)

    first = threading.Thread(target=submit, args=(0, 0))
    first.start()
    assert first_running.wait(5)
    others = [threading.Thread(target=submit, args=(k, -1 if k == 3 else k)) for k in range(1, 6)]
    for thread in others:
        thread.start()
    while sum(len(b) for b in batches) == 1 and len(group._queue) < 5:  # all five queued
        threading.Event().wait(0.01)
    release.set()
    for thread in [first, *others]:
        thread.join(5)

    assert batches[0] == [0]
    assert sorted(batches[1]) == [1, 2, 3, 4, 5], "one transaction for everything that queued"
    assert results == {0: 0, 1: 10, 2: 20, 3: "no 3", 4: 40, 5: 50}


def test_a_failing_batch_fails_every_step_in_it() -> None:
    def run(batch: Sequence[tuple[str, None]]) -> dict[str, object]:
        raise RuntimeError("database is locked")

    group: GroupCommit[str, None, None] = GroupCommit(run)
    with pytest.raises(RuntimeError, match="database is locked"):
        group.submit("exp-1", None)
