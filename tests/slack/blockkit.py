"""Slack's Block Kit rules, as Slack documents them, checked on a message; and a preview of it.

`problems(blocks)` lists every rule a message breaks (Slack answers `invalid_blocks` to any of
them, and the person sees nothing). `preview_html(messages)` draws messages roughly as Slack
does — mrkdwn bold, code, links, mentions, buttons — so a person can look at what meshbot says
without a workspace.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from typing import Any

Block = dict[str, Any]

# https://api.slack.com/reference/block-kit/blocks and …/composition-objects
MAX_BLOCKS = 50
TEXT_LIMITS = {"section": 3000, "header": 150, "context": 2000}
MAX_FIELDS, MAX_FIELD_TEXT = 10, 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS, MAX_BUTTON_TEXT, MAX_BUTTON_VALUE, MAX_ACTION_ID = 25, 75, 2000, 255
MAX_BLOCK_ID = 255
KNOWN = {"section", "header", "context", "actions", "divider", "image"}


def _text_problems(where: str, text: Any, limit: int, *, plain_only: bool = False) -> list[str]:
    if not isinstance(text, dict) or text.get("type") not in ("plain_text", "mrkdwn"):
        return [f"{where}: a text object needs type plain_text or mrkdwn"]
    if plain_only and text["type"] != "plain_text":
        return [f"{where}: must be plain_text (mrkdwn would show its asterisks)"]
    value = text.get("text")
    if not isinstance(value, str) or not value:
        return [f"{where}: empty text"]
    if len(value) > limit:
        return [f"{where}: {len(value)} characters, more than {limit}"]
    return []


def problems(blocks: Sequence[Block]) -> list[str]:
    found: list[str] = []
    if not 0 < len(blocks) <= MAX_BLOCKS:
        found.append(f"{len(blocks)} blocks (1 to {MAX_BLOCKS} allowed)")
    ids = [b["block_id"] for b in blocks if "block_id" in b]
    if len(ids) != len(set(ids)):
        found.append("block_id repeated")
    for i, block in enumerate(blocks):
        kind = block.get("type")
        where = f"block {i} ({kind})"
        if kind not in KNOWN:
            found.append(f"{where}: unknown block type")
            continue
        if len(str(block.get("block_id", ""))) > MAX_BLOCK_ID:
            found.append(f"{where}: block_id longer than {MAX_BLOCK_ID}")
        if kind == "header":
            found += _text_problems(where, block.get("text"), TEXT_LIMITS["header"], plain_only=True)
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                found.append(f"{where}: needs text or fields")
            if "text" in block:
                found += _text_problems(where, block["text"], TEXT_LIMITS["section"])
            fields = block.get("fields", [])
            if len(fields) > MAX_FIELDS:
                found.append(f"{where}: {len(fields)} fields, more than {MAX_FIELDS}")
            for j, field in enumerate(fields):
                found += _text_problems(f"{where} field {j}", field, MAX_FIELD_TEXT)
        elif kind == "context":
            elements = block.get("elements", [])
            if not 0 < len(elements) <= MAX_CONTEXT_ELEMENTS:
                found.append(f"{where}: {len(elements)} elements (1 to {MAX_CONTEXT_ELEMENTS})")
            for j, element in enumerate(elements):
                found += _text_problems(f"{where} element {j}", element, TEXT_LIMITS["context"])
        elif kind == "actions":
            elements = block.get("elements", [])
            if not 0 < len(elements) <= MAX_ACTIONS:
                found.append(f"{where}: {len(elements)} elements (1 to {MAX_ACTIONS})")
            found += _button_problems(where, elements)
    return found


def _button_problems(where: str, elements: Iterable[Block]) -> list[str]:
    found: list[str] = []
    action_ids = []
    for j, element in enumerate(elements):
        at = f"{where} element {j}"
        if element.get("type") != "button":
            continue
        found += _text_problems(at, element.get("text"), MAX_BUTTON_TEXT, plain_only=True)
        action_ids.append(element.get("action_id"))
        if len(str(element.get("action_id", ""))) > MAX_ACTION_ID:
            found.append(f"{at}: action_id longer than {MAX_ACTION_ID}")
        if len(str(element.get("value", ""))) > MAX_BUTTON_VALUE:
            found.append(f"{at}: value longer than {MAX_BUTTON_VALUE}")
        if element.get("style") not in (None, "primary", "danger"):
            found.append(f"{at}: style must be primary or danger")
    if len(action_ids) != len(set(action_ids)):
        found.append(f"{where}: action_id repeated within the block")
    return found


# ---------------------------------------------------------------------- the preview

_MRKDWN = [
    (re.compile(r"```(.+?)```", re.S), r"<pre>\1</pre>"),
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])"), r"<b>\1</b>"),
    (re.compile(r"(?<![\w_])_([^_\n]+)_(?![\w_])"), r"<i>\1</i>"),
    (re.compile(r"&lt;@(U[A-Z0-9]+)&gt;"), r'<span class="mention">@\1</span>'),
    (re.compile(r"&lt;!date\^\d+\^[^|]*\|([^&]+)&gt;"), r"\1"),
    (re.compile(r"&lt;(https?://[^|&]+)\|([^&]+)&gt;"), r'<a href="\1">\2</a>'),
]


def _mrkdwn(text: str) -> str:
    # Slack escapes &, < and > itself; the rest is the small mrkdwn subset meshbot uses.
    out = html.escape(text, quote=False).replace("&amp;lt;", "&lt;").replace("&amp;gt;", "&gt;")
    out = out.replace("&amp;amp;", "&amp;")
    for pattern, replacement in _MRKDWN:
        out = pattern.sub(replacement, out)
    return out.replace("\n", "<br>")


def _text(obj: Block) -> str:
    raw = str(obj.get("text", ""))
    return _mrkdwn(raw) if obj.get("type") == "mrkdwn" else html.escape(raw)


def _block_html(block: Block) -> str:
    kind = block["type"]
    if kind == "header":
        return f"<h3>{_text(block['text'])}</h3>"
    if kind == "section":
        parts = [f"<div>{_text(block['text'])}</div>"] if "text" in block else []
        if block.get("fields"):
            cells = "".join(f"<div class='field'>{_text(f)}</div>" for f in block["fields"])
            parts.append(f"<div class='fields'>{cells}</div>")
        return f"<section>{''.join(parts)}</section>"
    if kind == "context":
        return f"<div class='context'>{' · '.join(_text(e) for e in block['elements'])}</div>"
    if kind == "actions":
        buttons = "".join(
            f"<button class='{e.get('style', '')}'>{_text(e['text'])}</button>" for e in block["elements"]
        )
        return f"<div class='actions'>{buttons}</div>"
    return "<hr>" if kind == "divider" else ""


STYLE = """
body { font: 15px/1.46 -apple-system, 'Segoe UI', sans-serif; max-width: 760px; margin: 2em auto; }
.message { border-left: 4px solid #1264a3; padding: .4em 1em; margin: 1.5em 0; }
.message > .title { color: #616061; font-size: 12px; }
h3 { margin: .2em 0; } code { background: #f4ede4; color: #c7254e; padding: 0 .2em; }
pre { background: #f8f8f8; border: 1px solid #ddd; padding: .5em; white-space: pre-wrap; }
.fields { display: grid; grid-template-columns: 1fr 1fr; gap: .3em 1em; }
.context { color: #616061; font-size: 13px; } .mention { background: #e8f5fa; color: #1264a3; }
button { margin-right: .5em; padding: .3em .9em; border: 1px solid #bbb; background: #fff; }
button.primary { background: #007a5a; color: #fff; } button.danger { background: #e01e5a; color: #fff; }
"""


def preview_html(messages: Sequence[tuple[str, Sequence[Block]]]) -> str:
    body = "".join(
        f"<div class='message'><div class='title'>{html.escape(title)}</div>"
        + "".join(_block_html(b) for b in blocks)
        + "</div>"
        for title, blocks in messages
    )
    return f"<!doctype html><meta charset='utf-8'><title>meshbot in Slack</title><style>{STYLE}</style>{body}"
