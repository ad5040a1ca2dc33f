"""Replies as Block Kit, within Slack's limits: 50 blocks a message, 3,000 characters a section.

A reply becomes its first line (mrkdwn, with the outcome's icon), fields for what it acted on,
the body in sections, and a context line with the experiment id and its expiry. A body too long
for one message is paged over several
(``pages``); ``render`` gives the one-message form, cut with a note saying what was left out.
Message builders for the fault thread and the confirmation questions live here too, so every
block meshbot sends is shaped in one module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from bot.confirm import Pending
from bot.lifecycle.notify import EXTEND_ACTION, STOP_ACTION
from core.store import Experiment
from domain.live import describe_fault as short_description
from handlers.reply import Reply

Block = dict[str, Any]

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FIELD_TEXT = 2000
# Slack cuts a message's fallback text (notifications, screen readers) around 40,000 characters.
MAX_FALLBACK_TEXT = 3000
# Paging a huge listing into dozens of messages helps nobody: the last page says how to narrow it.
MAX_PAGES = 5

ICONS = {"ok": ":white_check_mark:", "refused": ":warning:", "denied": ":no_entry:", "error": ":x:"}

# Block action ids: the listeners subscribe to these.
# The lifecycle's reminders carry the same buttons as the thread's parent.
ACTION_STOP = STOP_ACTION
ACTION_EXTEND = EXTEND_ACTION
ACTION_CONFIRM = "mesh_confirm"
ACTION_APPROVE = "mesh_approve"
ACTION_CANCEL = "mesh_cancel"
EXTEND_BY = "10m"


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: otherwise `<service>` in a usage line reads as a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def header(text: str) -> Block:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": _cut(text, MAX_HEADER_TEXT), "emoji": True},
    }


def section(mrkdwn: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(mrkdwn, MAX_SECTION_TEXT)}}


def fields(pairs: Iterable[tuple[str, str]]) -> Block:
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": _cut(f"*{name}*\n{escape(value)}", MAX_FIELD_TEXT)}
            for name, value in list(pairs)[:10]
        ],
    }


def context(*parts: str) -> Block:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": _cut(p, MAX_SECTION_TEXT)} for p in parts[:10]],
    }


def slack_time(moment: datetime) -> str:
    """A time every reader sees in their own time zone, with UTC as the fallback text."""
    fallback = f"{moment:%Y-%m-%d %H:%M:%S} UTC"
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time_secs}}|{fallback}>"


def chunks(lines: Sequence[str], limit: int = MAX_SECTION_TEXT) -> list[str]:
    """Lines (escaped already) packed into texts of at most ``limit`` characters; a longer line is
    split where it must be."""
    out: list[str] = []
    current = ""
    for line in lines:
        while len(line) > limit:
            if current:
                out.append(current)
                current = ""
            out.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            out.append(current)
            current = line
        else:
            current = candidate
    if current:
        out.append(current)
    return out


def fallback_text_of(text: str) -> str:
    return _cut(text, MAX_FALLBACK_TEXT)


def fallback_text(reply: Reply) -> str:
    return fallback_text_of(reply.text) or reply.outcome


def _head(reply: Reply) -> tuple[list[Block], list[str]]:
    lines = reply.text.splitlines() or [reply.outcome]
    # The first line is mrkdwn like the rest (a header block is plain_text: `*Control plane*`
    # would show its asterisks), and it is shown once, whole, however long.
    first = f"{ICONS.get(reply.outcome, '')} {escape(lines[0])}".strip()
    head = [section(text) for text in chunks([first])]
    body = [escape(line) for line in lines[1:]]
    target = reply.target
    named = [
        (k, v)
        for k, v in (
            ("Cluster", target.cluster),
            ("Namespace", target.namespace),
            ("Service", target.service),
        )
        if v
    ]
    if target.namespace or target.service:
        head.append(fields(named))
    return head, body


def _footer(reply: Reply, expires_at: datetime | None) -> Block | None:
    parts = []
    if reply.experiment_id:
        parts.append(f"Experiment `{reply.experiment_id}`")
    if expires_at is not None:
        parts.append(f"ends {slack_time(expires_at)}")
    return context(" · ".join(parts)) if parts else None


def pages(reply: Reply, *, expires_at: datetime | None = None) -> list[list[Block]]:
    """The reply as one or more messages, each within Slack's limits."""
    head, body = _head(reply)
    footer = _footer(reply, expires_at)
    sections = [section(text) for text in chunks(body)]
    result: list[list[Block]] = []
    current = list(head)
    # Room for a "continued" or footer line at the end of every page.
    room = MAX_BLOCKS - 1
    for block in sections:
        if len(current) >= room:
            result.append(current)
            current = [context(f"continued ({len(result) + 1})")]
        current.append(block)
    result.append(current)
    if len(result) > MAX_PAGES:
        left_out = sum(1 for page in result[MAX_PAGES:] for b in page if b["type"] == "section")
        result = result[:MAX_PAGES]
        result[-1] = result[-1][: MAX_BLOCKS - 1] if footer is None else result[-1][: MAX_BLOCKS - 2]
        result[-1].append(
            context(f"… {left_out} more section(s) not shown: narrow the command (filters, limit=).")
        )
    if footer is not None:
        if len(result[-1]) >= MAX_BLOCKS:
            result.append([footer])
        else:
            result[-1].append(footer)
    return result


def render(reply: Reply, *, expires_at: datetime | None = None) -> list[Block]:
    """The reply as one message: the first page, with a note when more was left out."""
    all_pages = pages(reply, expires_at=expires_at)
    if len(all_pages) == 1:
        return all_pages[0]
    first = all_pages[0][: MAX_BLOCKS - 1]
    hidden = sum(1 for page in all_pages[1:] for b in page if b["type"] == "section")
    return [*first, context(f"… {hidden} more section(s) not shown here.")]


# ---------------------------------------------------------------- the fault thread


def describe_fault(experiment: Experiment) -> str:
    """domain.live's short form, spelled out for a thread's parent: `… of requests with …`."""
    what = f"{short_description(experiment)} of requests"
    headers = (experiment.parameters or {}).get("headers") or {}
    if headers:
        what += " with " + ", ".join(f"{k}: {v}" for k, v in headers.items())
    return what


def _mention(user_id: str | None, name: str | None) -> str:
    if user_id and not user_id.startswith(("cli:", "api:", "meshbot:")):
        return f"<@{user_id}>"
    return escape(name or user_id or "someone")


def fault_parent(experiment: Experiment, *, final: str | None = None) -> list[Block]:
    """The thread's parent message: what runs where until when, with Stop/Extend while it runs;
    ``final`` replaces the buttons with how it ended."""
    where = f"{experiment.service}.{experiment.namespace}"
    icon = ":test_tube:" if final is None else ":checkered_flag:"
    blocks: list[Block] = [
        header(f"{icon} Fault {experiment.id}: {experiment.kind} on {where}"),
        fields(
            [
                ("What", describe_fault(experiment)),
                ("Where", f"{where} (cluster {experiment.cluster})"),
                ("Started by", experiment.created_by_name or experiment.created_by_user),
                (
                    "State",
                    experiment.state if final is None else f"{experiment.state} ({experiment.end_reason})",
                ),
            ]
        ),
    ]
    if experiment.expires_at is not None and final is None:
        blocks.append(section(f"*Until* {slack_time(experiment.expires_at)}"))
    if final is None:
        blocks.append(
            {
                "type": "actions",
                "block_id": f"fault:{experiment.id}",
                "elements": [
                    {
                        "type": "button",
                        "action_id": ACTION_STOP,
                        "text": {"type": "plain_text", "text": "Stop now"},
                        "style": "danger",
                        "value": experiment.id,
                    },
                    {
                        "type": "button",
                        "action_id": ACTION_EXTEND,
                        "text": {"type": "plain_text", "text": "Extend 10 min"},
                        "value": experiment.id,
                    },
                ],
            }
        )
    else:
        blocks.append(section(escape(final)))
    blocks.append(context(f"Experiment `{experiment.id}` · `fault clear {experiment.id}` stops it"))
    return blocks


def fault_parent_text(experiment: Experiment) -> str:
    return (
        f"Fault {experiment.id}: {describe_fault(experiment)} on {experiment.service}.{experiment.namespace}"
    )


# ---------------------------------------------------------------- confirmation questions


def question(pending: Pending) -> list[Block]:
    """The question with Confirm (or, two-person, Approve) and Cancel; the value is only a token."""
    by = _mention(pending.actor.user_id, pending.actor.display_name)
    approve = pending.question.two_person
    blocks: list[Block] = [
        header(":raised_hand: Approval needed" if approve else ":raised_hand: Please confirm"),
        section(escape(pending.question.text)),
        context(
            f"Asked by {by} · the buttons work until {slack_time(pending.expires_at)}"
            + (" · another authorized person must approve" if approve else "")
        ),
        {
            "type": "actions",
            "block_id": "confirm",
            "elements": [
                {
                    "type": "button",
                    "action_id": ACTION_APPROVE if approve else ACTION_CONFIRM,
                    "text": {"type": "plain_text", "text": "Approve" if approve else "Confirm"},
                    "style": "primary",
                    "value": pending.token,
                },
                {
                    "type": "button",
                    "action_id": ACTION_CANCEL,
                    "text": {"type": "plain_text", "text": "Cancel"},
                    "value": pending.token,
                },
            ],
        },
    ]
    return blocks


def answered(pending: Pending, outcome: str) -> list[Block]:
    """What the question becomes once answered: the command and what happened, no buttons."""
    return [
        section(f"`{escape(pending.text)}` — {escape(outcome)}"),
        context(f"Asked by {_mention(pending.actor.user_id, pending.actor.display_name)}"),
    ]
