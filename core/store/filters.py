"""The audit filter grammar, ``key=value`` words shared by chat (``/mesh audit …``) and CLI."""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from core.store.errors import FilterError
from core.store.timespec import TIME_FORMS, parse_time
from core.values import Outcome, Source

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# Event ids are BIGINT: a larger `before=` fails in the driver, after the command was accepted.
MAX_EVENT_ID = 2**63 - 1


@dataclass(frozen=True)
class AuditQuery:
    """Parsed filters; every one set must match. Times are aware UTC; ``until`` is exclusive."""

    actor: str | None = None
    verb: str | None = None
    service: str | None = None
    namespace: str | None = None
    cluster: str | None = None
    channel: str | None = None
    source: str | None = None
    outcome: str | None = None
    experiment: str | None = None
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = DEFAULT_LIMIT
    before: int | None = None


FILTER_HELP: dict[str, str] = {
    "actor": "user id or display name (U024BE7LH, alice, cli:root, meshbot:scheduler)",
    "verb": "what was asked (fault, clear, audit, ...)",
    "service": "target service",
    "namespace": "target namespace",
    "cluster": "target cluster",
    "channel": "Slack channel id",
    "source": f"one of {', '.join(s.value for s in Source)}",
    "outcome": f"one of {', '.join(o.value for o in Outcome)}",
    "experiment": "experiment id (exp-7f3a)",
    "text": "words in the command as typed (case-insensitive)",
    "since": "from this time on (24h, 2026-11-01, ISO datetime)",
    "until": "before this time (same forms as since)",
    "limit": f"how many, 1..{MAX_LIMIT} (default {DEFAULT_LIMIT})",
    "before": "continue a listing: events older than this event id",
}
FILTER_KEYS: tuple[str, ...] = tuple(sorted(FILTER_HELP))


def parse_filter_text(line: str, *, now: datetime | None = None) -> AuditQuery:
    """Filters from one line of chat text; quotes group words (``text="connection refused"``)."""
    try:
        words = shlex.split(line)
    except ValueError as error:
        raise FilterError(f"cannot split the filters: {error}") from None
    return parse_filters(words, now=now)


def parse_filters(words: Sequence[str], *, now: datetime | None = None) -> AuditQuery:
    """``["service=web-svc", "since=24h"]`` → an AuditQuery; FilterError names what is wrong."""
    now = now or datetime.now(UTC)
    values: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        key = key.strip().lower()
        if not sep:
            raise FilterError(f"'{word}' is not key=value; known filters: {', '.join(FILTER_KEYS)}")
        if key not in FILTER_HELP:
            raise FilterError(_unknown_key_message(key))
        if key in values:
            raise FilterError(f"{key}= is given twice")
        if not value.strip():
            raise FilterError(f"{key}= needs a value: {FILTER_HELP[key]}")
        values[key] = value.strip()
    return _build(values, now)


def _unknown_key_message(key: str) -> str:
    guess = difflib.get_close_matches(key, FILTER_KEYS, n=1)
    hint = f" (did you mean {guess[0]}=?)" if guess else ""
    return f"unknown filter '{key}'{hint}; known filters: {', '.join(FILTER_KEYS)}"


def _build(values: dict[str, str], now: datetime) -> AuditQuery:
    since = _time(values, "since", now)
    until = _time(values, "until", now)
    if since is not None and until is not None and since >= until:
        raise FilterError(f"since= ({since:%Y-%m-%d %H:%M}Z) is not before until= ({until:%Y-%m-%d %H:%M}Z)")
    return AuditQuery(
        actor=values.get("actor"),
        verb=values.get("verb"),
        service=values.get("service"),
        namespace=values.get("namespace"),
        cluster=values.get("cluster"),
        channel=values.get("channel"),
        source=_choice(values, "source", [s.value for s in Source]),
        outcome=_choice(values, "outcome", [o.value for o in Outcome]),
        experiment=values.get("experiment"),
        text=values.get("text"),
        since=since,
        until=until,
        limit=_limit(values.get("limit")),
        before=_before(values.get("before")),
    )


def _time(values: dict[str, str], key: str, now: datetime) -> datetime | None:
    spec = values.get(key)
    if spec is None:
        return None
    moment = parse_time(spec, now=now)
    if moment is None:
        raise FilterError(f"cannot read {key}={spec} as a time; accepted: {TIME_FORMS}")
    return moment


def _choice(values: dict[str, str], key: str, allowed: list[str]) -> str | None:
    value = values.get(key)
    if value is None:
        return None
    if value.lower() not in allowed:
        raise FilterError(f"{key}={value} is not one of {', '.join(allowed)}")
    return value.lower()


def _limit(spec: str | None) -> int:
    if spec is None:
        return DEFAULT_LIMIT
    # ASCII digits: isdigit() takes `²`, which int() refuses; the length keeps int() cheap.
    significant = spec.lstrip("0")
    if not re.fullmatch(r"[0-9]+", spec) or not significant:
        raise FilterError(f"limit={_shown(spec)} is not a whole number from 1 to {MAX_LIMIT}")
    if len(significant) > 9 or int(significant) > MAX_LIMIT:
        raise FilterError(f"limit={_shown(spec)} is above the maximum of {MAX_LIMIT}")
    return int(significant)


def _shown(spec: str) -> str:
    # A refusal is one line, and the audit log keeps 500 characters of it: cut long input short.
    return spec if len(spec) <= 40 else f"{spec[:40]}… ({len(spec)} characters)"


def _before(spec: str | None) -> int | None:
    if spec is None:
        return None
    significant = spec.lstrip("0") or "0"
    if (
        not re.fullmatch(r"[0-9]+", spec)
        or len(significant) > len(str(MAX_EVENT_ID))
        or int(significant) > MAX_EVENT_ID
    ):
        raise FilterError(
            f"before={_shown(spec)} is not an event id "
            f"(a whole number from a listing, at most {MAX_EVENT_ID})"
        )
    return int(significant)
