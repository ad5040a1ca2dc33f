"""Block Kit at Slack's limits: 50 blocks a message, 3,000 characters a section, 150 a header."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.slack import render
from core.values import Target
from handlers.reply import Reply


def sections(blocks: list[dict[str, Any]]) -> list[str]:
    return [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]


def assert_within_limits(blocks: list[dict[str, Any]]) -> None:
    assert 0 < len(blocks) <= render.MAX_BLOCKS
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= render.MAX_HEADER_TEXT
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= render.MAX_SECTION_TEXT
        if block["type"] == "context":
            assert len(block["elements"]) <= 10


def test_a_short_reply_is_its_first_line_fields_and_a_context_line() -> None:
    reply = Reply(
        "Experiment exp-7f3a: delay 3s on 100% of requests to web-svc.emojivoto-istio.\nEnds soon.",
        experiment_id="exp-7f3a",
        target=Target("default", "emojivoto-istio", "web-svc"),
    )
    ends = datetime(2026, 11, 20, 12, 10, tzinfo=UTC)
    blocks = render.render(reply, expires_at=ends)
    assert [b["type"] for b in blocks] == ["section", "section", "section", "context"]
    assert blocks[0]["text"] == {
        "type": "mrkdwn",
        "text": ":white_check_mark: Experiment exp-7f3a: delay 3s on 100% of requests to "
        "web-svc.emojivoto-istio.",
    }
    assert [f["text"] for f in blocks[1]["fields"]] == [
        "*Cluster*\ndefault",
        "*Namespace*\nemojivoto-istio",
        "*Service*\nweb-svc",
    ]
    footer = blocks[-1]["elements"][0]["text"]
    assert (
        "`exp-7f3a`" in footer
        and f"<!date^{int(ends.timestamp())}^" in footer
        and "2026-11-20 12:10:00 UTC" in footer
    )


@pytest.mark.parametrize("outcome", ["ok", "refused", "denied", "error"])
def test_the_first_line_shows_the_outcome(outcome: str) -> None:
    blocks = render.render(Reply("something", outcome=outcome))  # type: ignore[arg-type]
    assert blocks[0]["text"]["text"].startswith(render.ICONS[outcome])


def test_slack_markup_in_replies_is_escaped() -> None:
    reply = Reply("Usage\nfault abort <http-status|grpc-code> <service> & more")
    _first, body = sections(render.render(reply))
    assert body == "fault abort &lt;http-status|grpc-code&gt; &lt;service&gt; &amp; more"


def test_a_long_first_line_is_shown_once_and_whole() -> None:
    first = "error: " + "x" * 400
    blocks = render.render(Reply(first, outcome="error"))  # type: ignore[arg-type]
    assert sections(blocks) == [f":x: {first}"]
    assert not [b for b in blocks if b["type"] == "header"]


def test_mrkdwn_in_the_first_line_is_rendered_not_shown_as_asterisks() -> None:
    blocks = render.render(Reply("Cluster *default* (http://127.0.0.1)\n*Control plane*\n• istiod: ready"))
    assert [b["text"]["type"] for b in blocks] == ["mrkdwn", "mrkdwn"]
    assert sections(blocks) == [
        ":white_check_mark: Cluster *default* (http://127.0.0.1)",
        "*Control plane*\n• istiod: ready",
    ]


def test_sections_are_packed_up_to_3000_characters_and_never_beyond() -> None:
    # Escaping makes each line longer than typed: the limit holds for what Slack receives.
    lines = [f"• exp-{i:04d} <delay> on web-svc & friends " + "y" * 40 for i in range(300)]
    pages = render.pages(Reply("Active faults (300):\n" + "\n".join(lines)))
    assert len(pages) == 1
    texts = sections(pages[0])
    assert all(len(t) <= render.MAX_SECTION_TEXT for t in texts)
    assert max(len(t) for t in texts) > render.MAX_SECTION_TEXT - 120  # packed, not one line each
    assert "\n".join(texts).count("• exp-") == 300


def test_a_single_line_longer_than_a_section_is_split() -> None:
    line = "z" * 7000
    texts = sections(render.render(Reply(f"Header\n{line}")))[1:]
    assert [len(t) for t in texts] == [3000, 3000, 1000]
    assert "".join(texts) == line


def test_exactly_50_blocks_fit_in_one_message() -> None:
    # The first line, then 48 sections of 3,000 characters, then the footer: 50 blocks.
    body = "\n".join("w" * 3000 for _ in range(48))
    pages = render.pages(Reply(f"Header\n{body}", experiment_id="exp-1"))
    assert len(pages) == 1 and len(pages[0]) == render.MAX_BLOCKS
    assert_within_limits(pages[0])


def test_a_long_listing_is_paged_each_page_within_the_limits() -> None:
    body = "\n".join("v" * 3000 for _ in range(120))
    reply = Reply(f"Audit log, newest first (120 shown):\n{body}", experiment_id="exp-2")
    pages = render.pages(reply)
    assert len(pages) == 3
    for page in pages:
        assert_within_limits(page)
    assert pages[1][0]["elements"][0]["text"] == "continued (2)"
    assert sum(len(sections(p)) for p in pages) == 1 + 120  # the first line, then the listing
    assert pages[-1][-1]["type"] == "context" and "exp-2" in pages[-1][-1]["elements"][0]["text"]
    # One message when only one fits: the first page and a note of what is left out.
    single = render.render(reply)
    assert_within_limits(single)
    assert single[-1]["elements"][0]["text"].startswith("… ")


def test_paging_stops_after_a_few_messages_and_says_how_to_narrow() -> None:
    body = "\n".join("u" * 3000 for _ in range(1000))
    pages = render.pages(Reply(f"Huge\n{body}"))
    assert len(pages) == render.MAX_PAGES
    for page in pages:
        assert_within_limits(page)
    assert "narrow the command" in json.dumps(pages[-1])


def test_an_empty_reply_still_renders() -> None:
    assert_within_limits(render.render(Reply("")))
