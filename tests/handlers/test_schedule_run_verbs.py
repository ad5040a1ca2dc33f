"""`skip` and `postpone`: what the reminder buttons send, read as a person would type it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from handlers import postpone, skip
from handlers.errors import UsageError


def test_a_button_value_names_the_schedule_and_its_run() -> None:
    assert skip.parse_args(["sch-1a2b@2031-03-04T09:00:00Z"]) == skip.SkipCommand(
        "sch-1a2b", datetime(2031, 3, 4, 9, tzinfo=UTC)
    )
    assert skip.parse_args(["sch-1a2b"]) == skip.SkipCommand("sch-1a2b", None)
    assert postpone.parse_args(["sch-1a2b", "by=30m"]) == postpone.PostponeCommand(
        "sch-1a2b", None, timedelta(minutes=30)
    )
    assert postpone.parse_args(["sch-1a2b"]).by == timedelta(hours=1)


@pytest.mark.parametrize(
    ("module", "args", "message"),
    [
        (skip, [], "give one schedule id"),
        (skip, ["sch-1a2b@tuesday"], "'tuesday' is not a run time like 2026-12-01T13:00:00Z"),
        (skip, ["exp-1a2b"], "schedule id"),
        (postpone, ["sch-1a2b", "by=soon"], "postponement 'soon' is not a duration"),
        (postpone, ["sch-1a2b", "until=1h"], "unknown option until="),
        (postpone, ["sch-1a2b", "sch-2c3d"], "give one schedule id"),
    ],
)
def test_bad_input_says_what_is_wrong_and_the_right_form(
    module: object, args: list[str], message: str
) -> None:
    with pytest.raises(UsageError) as raised:
        module.parse_args(args)  # type: ignore[attr-defined]
    assert message in str(raised.value)
    assert f"Usage: {module.USAGE}" in str(raised.value)  # type: ignore[attr-defined]
