"""The daily digest: per channel, the experiments of the last day, those still active, and what is
scheduled next. Configured in the policy file (``digest:``); sent by the leader once a day."""

from __future__ import annotations

from datetime import datetime, timedelta

from core.durations import human_duration
from core.store import ExperimentState, Store, list_active, list_experiments, list_schedules, next_run
from domain.schedules import describe_when, local_time

DAY = timedelta(days=1)
_MAX_LINES = 20  # per section: a digest is a summary, `audit` has the rest


def _section(title: str, lines: list[str]) -> list[str]:
    if not lines:
        return []
    shown = lines[:_MAX_LINES]
    if len(lines) > _MAX_LINES:
        shown.append(f"… and {len(lines) - _MAX_LINES} more")
    return [f"*{title}*", *shown]


def digest_text(store: Store, channel: str, *, now: datetime, timezone: str = "UTC") -> str | None:
    """The digest for one channel, or None when it has nothing to report."""
    with store.read() as session:
        recent = list_experiments(session=session, since=now - DAY, channel=channel)
        active = [e for e in list_active(session=session) if e.channel == channel]
        schedules = [s for s in list_schedules(session=session, channel=channel) if s.enabled]
    ran = []
    for e in recent:
        outcome = e.end_reason or e.state
        if e.state == ExperimentState.ACTIVE:
            outcome = "still active"
        who = e.created_by_name or e.created_by_user
        ran.append(
            f"• {e.id} {e.kind} on {e.service}.{e.namespace} for "
            f"{human_duration(timedelta(seconds=e.duration_seconds))} by {who} — {outcome}"
        )
    running = []
    for e in active:
        left = (e.expires_at - now) if e.expires_at else None
        when = (
            f"ends in {human_duration(timedelta(seconds=max(1, int(left.total_seconds()))))}"
            if left and left.total_seconds() > 0
            else "ending"
        )
        running.append(f"• {e.id} {e.kind} on {e.service}.{e.namespace} — {when}")
    upcoming: list[tuple[datetime, str]] = []
    for s in schedules:
        fire = next_run(s, now)
        if fire is not None:
            upcoming.append(
                (fire, f"• {local_time(fire, timezone)}: `{s.command}` ({s.id}, {describe_when(s)})")
            )
    upcoming.sort()
    lines = [
        *_section(f"Experiments in the last day ({len(ran)})", ran),
        *_section(f"Active now ({len(running)})", running),
        *_section("Scheduled next", [line for _, line in upcoming]),
    ]
    if not lines:
        return None
    return "\n".join([f"📋 meshbot daily digest, {local_time(now, timezone)}", *lines])
