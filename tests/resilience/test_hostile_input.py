"""Hostile input, generated: whatever text, button value or API body arrives, meshbot answers
with one line — never a crash, a 5xx or a traceback — applies nothing for a malformed command,
audits every refusal exactly once, and leaves an audit chain that verifies.

Each property runs a bounded number of generated examples against one app (hypothesis'
``max_examples``), so each example is judged by what changed since the one before it: audit rows
added, writes the playground's API server received.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.slack import render
from core.store import Actor, Source, Store
from core.store.audit import TEXT_KEPT
from core.values import Outcome
from tests.resilience.conftest import assert_chain_intact
from tests.resilience.figures import attempt
from tests.slack.conftest import API_TOKEN, SlackApp, SlackClient, audit_rows

NS = "emojivoto-istio"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
OPS = Actor(user_id="U0OPS", team_id="T0TEST", display_name="ops")

# What an attacker types: shell, unicode digits, bidi and zero-width characters, YAML and JSON,
# other namespaces, header values with newlines and quotes, absurd numbers and durations.
HOSTILE = [
    "; rm -rf /",
    "$(id)",
    "`reboot`",
    "| cat /etc/passwd",
    "&& curl 127.0.0.1:1",
    "> /tmp/x",
    "⁵⁰⁰",
    "５０%",
    "٣s",
    "1_0s",
    "1e3s",
    "\u202eevil",
    "web\u200b-svc",
    "\ufeffweb-svc",
    "web-svc\n",
    "web-svc\r\nx: y",
    "{spec: {hosts: ['*']}}",
    '{"http": [{"fault": {}}]}',
    "- !!python/object/apply:os.system ['id']",
    "kube-system",
    "istio-system",
    "-n kube-system",
    "web-svc.kube-system",
    "default",
    'header=x-user:"a\nb"',
    "header=x-user:'",
    'header="x:\r\ny"',
    "header=:",
    "99999999999999999999s",
    "-5s",
    "-1",
    "0",
    "0%",
    "101%",
    "-50%",
    "NaN%",
    "inf",
    "999",
    "1000",
    f"{2**64}",
    "for -10m",
    "for 0s",
    "for 99999999d",
    "exp-../../etc",
    "exp-%00",
    "\x00",
    "'",
    '"',
    '"unclosed',
    "\\",
    "x" * 10_000,
    "@1MB",
]
VERBS = [
    "fault",
    "fault delay",
    "fault abort",
    "fault extend",
    "fault clear",
    "expose",
    "unexpose",
    "inject",
    "uninject",
    "mtls",
    "mtls strict",
    "use",
    "schedule",
    "unschedule",
    "pause",
    "postpone",
    "audit",
    "summary",
    "graph",
    "dashboard",
]
word = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=12),
    st.sampled_from(["web-svc", "3s", "500", "50%", "for", "10m", f"-n {NS}", f"web-svc.{NS}"]),
)
# A command whose words include at least one hostile one: malformed by construction, except
# where a hostile word happens to be harmless in its place (then the command may run, and the
# properties that need a refusal are not asked of it).
hostile_command = st.builds(
    lambda verb, words, bad, at: " ".join([verb, *words[:at], bad, *words[at:]]),
    st.sampled_from(VERBS),
    st.lists(word, max_size=5),
    st.sampled_from(HOSTILE),
    st.integers(0, 5),
)
# A 1 MB word, spelled short so that a failing example prints in a line, not a megabyte.
BIG = "9" * 1_000_000


def expand(text: str) -> str:
    return text.replace("@1MB", BIG)


FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


@pytest.fixture
def playground_writes(playground: Any) -> Any:
    return lambda: len(playground.hooks.writes())


def _judge(store: Store, rows_before: int, writes_before: int, writes_now: int) -> Any:
    """The one audit row a command left, checked: never an error, nothing applied if refused."""
    rows = audit_rows(store)
    assert len(rows) == rows_before + 1, [(r.verb, r.outcome, r.command[:60]) for r in rows[rows_before:]]
    row = rows[-1]
    assert row.outcome != Outcome.ERROR, (row.command[:200], row.message)
    assert "Traceback" not in row.message
    if row.outcome != Outcome.OK:
        assert writes_now == writes_before, (row.command[:200], row.message)
    return row


@FUZZ
@given(text=hostile_command)
@example(text="fault delay @1MB s web-svc")
@example(text=f"fault abort 500 web-svc.{NS} " + "a" * 10_000)
@example(text=f'fault abort 500 web-svc.{NS} "header=x-user:a\nb"')
@example(text="fault abort 500 web-svc -n kube-system")
def test_the_pipeline_answers_any_text_with_one_audited_line(
    slack_app: SlackApp, playground_writes: Any, text: str
) -> None:
    with attempt("hostile input"):
        rows_before, writes_before = len(audit_rows(slack_app.store)), playground_writes()
        reply = slack_app.pipeline.run(expand(text), actor=OPS, source=Source.SLACK, channel="C0FUZZ")
        row = _judge(slack_app.store, rows_before, writes_before, playground_writes())
        assert row.outcome == reply.outcome
        assert len(row.command) <= TEXT_KEPT + 100
        assert_chain_intact(slack_app.store)


SLASH = settings(FUZZ, max_examples=30)


@SLASH
@given(text=hostile_command, user_name=st.sampled_from(["ops", 'o"ps', "o\\ps", "‮ops", "x" * 300]))
@example(text="fault abort 500 web-svc @1MB", user_name="ops")
def test_the_signed_slash_command_endpoint_answers_any_text(
    slack: SlackClient, slack_app: SlackApp, playground_writes: Any, text: str, user_name: str
) -> None:
    with attempt("hostile input"):
        rows_before, writes_before = len(audit_rows(slack_app.store)), playground_writes()
        calls_before = len(slack_app.fake.calls)
        sent = slack.command(expand(text), user_name=user_name)
        assert sent.response.status_code == 200, sent.response.text
        deadline = time.monotonic() + 10
        while len(audit_rows(slack_app.store)) <= rows_before:
            assert time.monotonic() < deadline, "the command was never audited"
            time.sleep(0.02)
        _judge(slack_app.store, rows_before, writes_before, playground_writes())
        # The person hears back once, and never a traceback.
        answers = slack_app.fake.wait_for(
            lambda calls: any(c.path.endswith(sent.trigger_id) for c in calls[calls_before:])
        )
        assert not any("Traceback" in c.all_text() for c in answers[calls_before:])
        assert_chain_intact(slack_app.store)


ACTIONS = [
    render.ACTION_STOP,
    render.ACTION_EXTEND,
    render.ACTION_CONFIRM,
    render.ACTION_APPROVE,
    render.ACTION_CANCEL,
    "mesh_schedule_postpone",
    "nonsense",
    "x" * 300,
]
odd_value = st.one_of(
    st.sampled_from(
        ["", "exp-0000", "exp-\n", "null", "{}", "[]", '{"id": 1}', "conf-../", "x" * 10_000, "-1", "٣"]
    ),
    st.text(max_size=40),
)


@SLASH
@given(action=st.sampled_from(ACTIONS), value=odd_value, ephemeral=st.booleans())
def test_button_presses_with_odd_values_change_nothing(
    slack: SlackClient, slack_app: SlackApp, playground_writes: Any, action: str, value: str, ephemeral: bool
) -> None:
    with attempt("hostile input"):
        writes_before = playground_writes()
        rows_before = len(audit_rows(slack_app.store))
        sent = slack.press(action, value, ephemeral=ephemeral)
        assert sent.response.status_code < 500, sent.response.text
        assert "Traceback" not in sent.response.text
        # No experiment or question has such a value: nothing is applied, nothing is audited as
        # done, and whatever was audited is no error.
        time.sleep(0.05)
        assert playground_writes() == writes_before
        new = audit_rows(slack_app.store)[rows_before:]
        assert all(r.outcome in (Outcome.REFUSED, Outcome.DENIED) for r in new), [
            (r.verb, r.outcome) for r in new
        ]
        assert len(new) <= 1


api_body = st.one_of(
    st.fixed_dictionaries(
        {"command": hostile_command},
        optional={
            "channel": st.one_of(st.text(max_size=20), st.integers(), st.none()),
            "actor": st.one_of(st.text(max_size=20), st.sampled_from(["alice\n", "", "a" * 500])),
            "confirmed": st.one_of(st.booleans(), st.text(max_size=3), st.integers()),
        },
    ),
    st.dictionaries(st.text(max_size=8), st.one_of(st.text(max_size=8), st.integers()), max_size=3),
    st.lists(st.integers(), max_size=3),
)


@SLASH
@given(body=api_body)
def test_the_api_answers_any_body_with_a_4xx_or_one_audited_line(
    slack: SlackClient, slack_app: SlackApp, playground_writes: Any, body: Any
) -> None:
    with attempt("hostile input"):
        rows_before, writes_before = len(audit_rows(slack_app.store)), playground_writes()
        if isinstance(body, dict) and isinstance(body.get("command"), str):
            body = {**body, "command": expand(body["command"])}
        response = slack.http.post("/api/v1/commands", headers=AUTH, content=json.dumps(body))
        assert response.status_code < 500, response.text
        assert "Traceback" not in response.text
        if response.status_code == 422 and len(audit_rows(slack_app.store)) == rows_before:
            # The body itself was malformed: refused before it was a command, nothing to audit.
            assert playground_writes() == writes_before
            return
        _judge(slack_app.store, rows_before, writes_before, playground_writes())
        assert_chain_intact(slack_app.store)
