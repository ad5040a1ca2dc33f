"""Times and durations as people type them: ``24h``, ``7d``, ``2026-11-01``, ISO datetimes."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from core.store.errors import FilterError

# fullmatch and ASCII digits: `\d` takes `٥`, and `$` a trailing newline.
_DURATION = re.compile(r"\s*([0-9]+)\s*([smhdw])\s*")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
# Older than any audit row worth asking for, and `now - age` stays a date Python can hold.
MAX_AGE = timedelta(days=3650)

DURATION_FORMS = "a number with a unit s, m, h, d or w, e.g. 90s, 30m, 24h, 400d, 2w (at most 3650d)"
TIME_FORMS = (
    "a duration ago (30m, 24h, 7d, 2w), a date in UTC (2026-11-01), or an ISO datetime "
    "(2026-11-01T09:30, 2026-11-01T09:30:00Z, 2026-11-01T09:30:00+01:00; UTC when no offset)"
)


def parse_duration(spec: str) -> timedelta | None:
    """``24h`` → 24 hours; None when ``spec`` is not a duration; FilterError beyond MAX_AGE."""
    match = _DURATION.fullmatch(spec)
    if match is None:
        return None
    amount, unit = match.groups()
    # Length first: int() refuses more than 4300 digits, and timedelta() overflows long before.
    if len(amount) > 9 or int(amount) * _UNIT_SECONDS[unit] > MAX_AGE.total_seconds():
        raise FilterError(f"{spec.strip()} is too long: at most {MAX_AGE.days}d (ten years)")
    return timedelta(seconds=int(amount) * _UNIT_SECONDS[unit])


def parse_time(spec: str, *, now: datetime) -> datetime | None:
    """A point in time (aware, UTC) from a duration ago, a date, or an ISO datetime; else None."""
    ago = parse_duration(spec)
    if ago is not None:
        return now - ago
    spec = spec.strip()
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", spec):
        try:
            day = date.fromisoformat(spec)
        except ValueError:
            return None
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    if "T" not in spec.upper() and " " not in spec:
        return None
    try:
        moment = datetime.fromisoformat(spec)
        # Year 1 or 9999 with an offset lies outside what a datetime holds once moved to UTC.
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
