"""Durations as people type them in commands and the policy file: `500ms`, `3s`, `10m`, `1h30m`."""

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


def format_duration(value: timedelta) -> str:
    """A duration as people write it: `3s`, `1.5s`, `250ms`, `10m`, `1h30m`."""
    total_ms = round(value.total_seconds() * 1000)
    if total_ms < 1000:
        return f"{total_ms}ms"
    if total_ms % 1000:
        return f"{total_ms / 1000:g}s"
    seconds = total_ms // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts)
