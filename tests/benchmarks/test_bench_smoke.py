"""A smoke run of the benchmarks that take seconds: they still run, and their figures still fit the
one table (`python -m bench`). Only that they run — figures are never asserted (docs/performance.md)."""

from __future__ import annotations

from bench.__main__ import table
from bench.scale import main as scale


def test_the_scale_benchmark_runs_and_fills_its_row() -> None:
    result = scale(["--quick"])
    assert result["status_calls"] > 0 and result["pods"] > 0
    lines = table({"scale": result})
    assert len(lines) == 3 and "`status`: 20 services" in lines[2]
