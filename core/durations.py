"""Durations as people type them in commands and the policy file (`500ms`, `3s`, `10m`, `1h30m`),
read and written back the same way; pure, so every layer can share it."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class DurationError(ValueError):
    """A word that is not what its place in the command needs; the message says what was expected."""


def duration(text: str, *, what: str = "duration") -> timedelta:
    """`3s`, `500ms`, `10m`, `1h30m`, `2d`: a positive duration."""
    if not text or _DURATION_PART.sub("", text) != "":
        raise DurationError(f"{what} {text!r} is not a duration like 500ms, 3s, 10m or 1h30m")
    seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    if seconds <= 0:
        raise DurationError(f"{what} {text!r} must be longer than zero")
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
