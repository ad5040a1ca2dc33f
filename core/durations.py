"""Durations as people type them in commands and the policy file (`500ms`, `3s`, `10m`, `1h30m`),
read and written back the same way; pure, so every layer can share it."""

from __future__ import annotations

import re
from datetime import timedelta

# ASCII digits only: `\d` and str.isdigit() also take `²` or `٥`, which float() then may refuse.
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Every duration meshbot accepts is bounded, so adding it to a date can never overflow later (in a
# timer, the scheduler, the leader); nothing meshbot does needs longer. Verbs bound tighter.
MAX_DURATION = timedelta(days=730)
MAX_DURATION_TEXT = "730d (two years)"


class DurationError(ValueError):
    """A word that is not what its place in the command needs; the message says what was expected."""


def duration(text: str, *, what: str = "duration", maximum: timedelta | None = None) -> timedelta:
    """`3s`, `500ms`, `10m`, `1h30m`, `2d`: a positive duration, at most ``maximum`` (default and
    ceiling: MAX_DURATION)."""
    if not text or _DURATION_PART.sub("", text) != "":
        raise DurationError(f"{what} {text!r} is not a duration like 500ms, 3s, 10m or 1h30m")
    seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    if seconds <= 0:
        raise DurationError(f"{what} {text!r} must be longer than zero")
    # Compared as seconds, before timedelta() sees a number it cannot hold (OverflowError).
    ceiling = min(maximum, MAX_DURATION) if maximum is not None else MAX_DURATION
    if seconds > ceiling.total_seconds():
        limit = MAX_DURATION_TEXT if ceiling == MAX_DURATION else _limit_text(ceiling)
        raise DurationError(f"{what} {text!r} is too long: at most {limit}")
    return timedelta(seconds=seconds)


def human_duration(value: timedelta) -> str:
    """A duration as people type it in commands (`250ms`, `1.5s`, `10m`, `1h30m`), for messages."""
    millis = value / timedelta(milliseconds=1)
    if millis < 1000:
        return f"{millis:g}ms"
    if millis % 1000:
        return f"{millis / 1000:g}s"
    hours, rest = divmod(int(millis // 1000), 3600)
    minutes, seconds = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")) if n)


def _limit_text(value: timedelta) -> str:
    # `366d` reads better than human_duration's `8784h` for the long bounds.
    if value >= timedelta(days=2) and value % timedelta(days=1) == timedelta(0):
        return f"{value.days}d"
    return human_duration(value)
