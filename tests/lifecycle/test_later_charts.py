"""Report-card charts wait for their tail on one thread: in due order, never more than the limit
waiting, and none drawn after the service stops."""

from __future__ import annotations

import threading
import time

from bot.lifecycle.charts import LaterCharts


def test_charts_are_drawn_in_the_order_they_fall_due_not_the_order_they_came() -> None:
    charts = LaterCharts()
    drawn: list[str] = []
    done = threading.Event()
    try:
        assert charts.after(0.4, lambda: (drawn.append("late"), done.set()))
        assert charts.after(0.1, lambda: drawn.append("early"))
        assert done.wait(5)
        assert drawn == ["early", "late"]
        assert charts.waiting == 0
    finally:
        charts.stop()


def test_a_failing_chart_does_not_stop_the_next_one() -> None:
    charts = LaterCharts()
    done = threading.Event()

    def broken() -> None:
        raise RuntimeError("matplotlib fell over")

    try:
        charts.after(0.05, broken)
        charts.after(0.1, done.set)
        assert done.wait(5)
    finally:
        charts.stop()


def test_beyond_the_limit_a_chart_is_dropped_and_says_so() -> None:
    charts = LaterCharts(limit=2)
    try:
        assert charts.after(60, lambda: None) and charts.after(60, lambda: None)
        assert charts.after(60, lambda: None) is False
        assert charts.waiting == 2
    finally:
        charts.stop()


def test_charts_still_waiting_at_stop_are_not_drawn() -> None:
    charts = LaterCharts()
    drawn: list[int] = []
    charts.after(0.2, lambda: drawn.append(1))
    charts.stop()
    time.sleep(0.4)
    assert drawn == [] and charts.waiting == 0
    assert charts.after(0.01, lambda: drawn.append(2)) is False, "a stopped queue takes nothing"
