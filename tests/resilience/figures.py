"""The resilience suite's figures: attempts, held and failed per area, printed after `make test`.

Each attack records its attempts with ``attempt(area)``; a body that raises counts as failed (and
the test fails as usual). Under xdist the workers hand their counts to the controller through
``workeroutput``, so the table covers the whole run whatever the number of workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

# area → [attempts, held, failed]
_COUNTS: dict[str, list[int]] = {}
AREAS = ("hostile input", "loose ends", "floods", "outages", "crashes")


def _add(area: str, held: int, failed: int) -> None:
    row = _COUNTS.setdefault(area, [0, 0, 0])
    row[0] += held + failed
    row[1] += held
    row[2] += failed


@contextmanager
def attempt(area: str) -> Iterator[None]:
    """One attack: held when the body returns, failed when it raises."""
    assert area in AREAS, area
    try:
        yield
    except BaseException:
        _add(area, 0, 1)
        raise
    _add(area, 1, 0)


def table(counts: dict[str, list[int]]) -> list[str]:
    lines = ["| area | attempts | held | failed |", "| --- | ---: | ---: | ---: |"]
    for area in sorted(counts, key=lambda a: AREAS.index(a) if a in AREAS else len(AREAS)):
        attempts, held, failed = counts[area]
        lines.append(f"| {area} | {attempts} | {held} | {failed} |")
    return lines


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["resilience_figures"] = {area: list(row) for area, row in _COUNTS.items()}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    counts = getattr(node, "workeroutput", {}).get("resilience_figures", {})
    for area, (_attempts, held, failed) in counts.items():
        _add(area, held, failed)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _COUNTS:
        return
    terminalreporter.section("resilience figures")
    for line in table(_COUNTS):
        terminalreporter.write_line(line)
