"""Cron expressions mean what crontab(5) says: weekday 0 (and 7) is Sunday, 2 is Tuesday."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.cron import CronError, cron_trigger

# A Tuesday morning: 2031-03-04 is a Tuesday.
TUESDAY_MORNING = datetime(2031, 3, 4, 9, 0, tzinfo=UTC)


def _next(expression: str) -> str:
    fire = cron_trigger(expression, "UTC").get_next_fire_time(None, TUESDAY_MORNING)
    assert fire is not None
    return fire.strftime("%a %Y-%m-%d %H:%M")


@pytest.mark.parametrize(
    ("expression", "fires"),
    [
        ("0 14 * * 2", "Tue 2031-03-04 14:00"),
        ("0 14 * * tue", "Tue 2031-03-04 14:00"),
        ("0 14 * * 0", "Sun 2031-03-09 14:00"),
        ("0 14 * * 7", "Sun 2031-03-09 14:00"),
        ("0 14 * * 3-5", "Wed 2031-03-05 14:00"),
        ("0 8 * * 1-5", "Wed 2031-03-05 08:00"),
        ("0 14 * * 6,0", "Sat 2031-03-08 14:00"),
        ("0 14 * * */3", "Wed 2031-03-05 14:00"),  # sun, wed, sat
        ("0 14 * * *", "Tue 2031-03-04 14:00"),
    ],
)
def test_weekdays_are_numbered_as_crontab_numbers_them(expression: str, fires: str) -> None:
    assert _next(expression) == fires


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("0 14 * *", "wrong number of fields"),
        ("0 14 * * 5-2", "runs backwards"),
        ("61 14 * * *", "higher than the maximum value"),
    ],
)
def test_unreadable_expressions_say_why(expression: str, why: str) -> None:
    with pytest.raises(CronError, match=why):
        cron_trigger(expression, "UTC")
