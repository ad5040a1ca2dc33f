"""Risky commands ask first: Confirm / Cancel, and Approve by a second person where the policy says."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi.testclient import TestClient

from bot.slack import render

from .conftest import ROLES, SlackApp, SlackClient, audit_rows, buttons, only_experiment_id, wait_audit

RISKY = "fault abort 500 web-svc.emojivoto-istio 60%"


def ask(slack: SlackClient, text: str = RISKY, user: str = "U0OPS") -> str:
    """Send a risky command; the token its question's buttons carry."""
    sent = slack.command(text, user=user)
    question = slack.fake.wait_for_call(
        "response_url", "Please confirm", path=f"/response/{sent.trigger_id}"
    )[0]
    assert question.params["response_type"] == "ephemeral"
    values = buttons(question.blocks)
    assert set(values) == {render.ACTION_CONFIRM, render.ACTION_CANCEL}
    return values[render.ACTION_CONFIRM]


def test_a_risky_fault_waits_for_confirm_then_runs_as_the_asker(
    slack: SlackClient, slack_app: SlackApp
) -> None:
    token = ask(slack)
    question = slack.fake.calls_to("response_url")[0]
    assert "Asking because it aborts 60% of requests (the policy asks from 50%)." in question.all_text()
    # Nothing ran and nothing is audited while the question is open.
    assert audit_rows(slack_app.store) == []
    pressed = slack.press(render.ACTION_CONFIRM, token, ephemeral=True)
    slack.fake.wait_for_call("chat.postMessage", "Stop now")
    replaced = slack.fake.wait_for_call("response_url", "Confirmed")[0]
    assert replaced.path == pressed.response_url.removeprefix(slack.fake.base)
    assert replaced.params["replace_original"] is True
    (row,) = audit_rows(slack_app.store)
    assert (row.actor_user_id, row.command, row.outcome) == ("U0OPS", RISKY, "ok")
    assert row.message.startswith("[confirmed] Experiment exp-")
    only_experiment_id(slack_app.store)


def test_only_the_asker_can_confirm(slack: SlackClient, slack_app: SlackApp) -> None:
    token = ask(slack)
    slack.press(render.ACTION_CONFIRM, token, user="U0ADMIN")
    slack.fake.wait_for_call("chat.postEphemeral", "Only <@U0OPS>, who asked, can confirm")
    assert audit_rows(slack_app.store) == []
    # The question is still open for its asker.
    slack.press(render.ACTION_CONFIRM, token)
    wait_audit(slack_app.store, 1)


def test_cancel_says_so_is_audited_once_and_the_buttons_stop_working(
    slack: SlackClient, slack_app: SlackApp
) -> None:
    token = ask(slack)
    slack.press(render.ACTION_CANCEL, token)
    slack.fake.wait_for_call("response_url", "cancelled by ops")
    (row,) = wait_audit(slack_app.store, 1)
    assert (row.command, row.outcome, row.message) == (RISKY, "refused", "cancelled by ops")
    slack.press(render.ACTION_CONFIRM, token)
    slack.fake.wait_for_call("chat.postEphemeral", "already answered or has expired")
    assert len(audit_rows(slack_app.store)) == 1
    assert slack.fake.calls_to("chat.postMessage") == []


def test_clear_all_asks_an_admin_first(slack: SlackClient, slack_app: SlackApp) -> None:
    slack.command("fault delay 3s web-svc.emojivoto-istio")
    slack.fake.wait_for_call("chat.postMessage", "Stop now")
    token = ask(slack, "fault clear all", user="U0ADMIN")
    slack.press(render.ACTION_CONFIRM, token, user="U0ADMIN")
    slack.fake.wait_for_call("chat.update", "Ended: halted by admin")
    assert [r.outcome for r in audit_rows(slack_app.store)] == ["ok", "ok"]


def test_a_production_namespace_asks_before_any_fault(make_slack_app: Callable[..., SlackApp]) -> None:
    app = make_slack_app({"roles": ROLES, "production_namespaces": ["emojivoto-istio"]})
    with TestClient(app.app) as http:
        slack = SlackClient(http, app.fake)
        slack.command("fault delay 3s web-svc.emojivoto-istio")
        question = slack.fake.wait_for_call("response_url", "Please confirm")[0]
    assert "emojivoto-istio is a production namespace" in question.all_text()


def test_two_person_rule_a_second_authorized_user_must_approve(
    make_slack_app: Callable[..., SlackApp],
) -> None:
    app = make_slack_app({"roles": ROLES, "two_person_namespaces": ["emojivoto-istio"]})
    with TestClient(app.app) as http:
        slack = SlackClient(http, app.fake)
        slack.command("fault delay 3s web-svc.emojivoto-istio")
        # Asked in the channel, where others can see it; the asker is told privately.
        question = slack.fake.wait_for_call("chat.postMessage", "Approval needed")[0]
        slack.fake.wait_for_call("chat.postEphemeral", "another authorized person must press Approve")
        token = buttons(question.blocks)[render.ACTION_APPROVE]
        slack.press(render.ACTION_APPROVE, token, user="U0OPS")
        slack.fake.wait_for_call("chat.postEphemeral", "another authorized person must approve it")
        slack.press(render.ACTION_APPROVE, token, user="U0VIEW")
        slack.fake.wait_for_call("chat.postEphemeral", "may not approve this")
        (denied,) = wait_audit(app.store, 1)
        assert (denied.actor_user_id, denied.outcome) == ("U0OPS", "denied")
        slack.press(render.ACTION_APPROVE, token, user="U0DEV1")
        slack.fake.wait_for_call("chat.postMessage", "Stop now")
        slack.fake.wait_for_call("response_url", "Approved by dev1")
        rows = wait_audit(app.store, 2)
    assert (rows[-1].actor_user_id, rows[-1].outcome) == ("U0OPS", "ok")
    assert rows[-1].message.startswith("[approved by dev1 (T0TEST/U0DEV1)] Experiment exp-")
    # Stopping a fault never needs a second person.
    assert "fault clear" not in question.all_text()


def test_stop_needs_no_approval_even_in_a_two_person_namespace(
    make_slack_app: Callable[..., SlackApp],
) -> None:
    app = make_slack_app({"roles": ROLES, "two_person_namespaces": ["emojivoto-istio"]})
    with TestClient(app.app) as http:
        slack = SlackClient(http, app.fake)
        slack.command("fault delay 3s web-svc.emojivoto-istio")
        token = buttons(slack.fake.wait_for_call("chat.postMessage", "Approval needed")[0].blocks)
        slack.press(render.ACTION_APPROVE, token[render.ACTION_APPROVE], user="U0ADMIN")
        parent = slack.fake.wait_for_call("chat.postMessage", "Stop now")[0]
        slack.press(render.ACTION_STOP, buttons(parent.blocks)[render.ACTION_STOP])
        slack.fake.wait_for_call("chat.update", "Ended")


def test_an_unanswered_question_expires_and_is_withdrawn(make_slack_app: Callable[..., SlackApp]) -> None:
    app = make_slack_app({"roles": ROLES, "confirm": {"expires_after": 0.2}})
    with TestClient(app.app) as http:
        slack = SlackClient(http, app.fake)
        token = ask(slack)
        time.sleep(0.3)
        slack.press(render.ACTION_CONFIRM, token)
        slack.fake.wait_for_call("response_url", "not confirmed in time")
        (row,) = wait_audit(app.store, 1)
        assert (row.outcome, row.message) == ("refused", "not confirmed in time; nothing was done")
        # The sweeper withdraws questions nobody pressed at all.
        ask(slack, "fault abort 503 voting-svc.emojivoto-istio 90%")
        time.sleep(0.3)
        assert http.portal.call(app.app.state.parts.front.expire_questions) == 1  # type: ignore[union-attr]
        rows = wait_audit(app.store, 2)
    assert rows[-1].command == "fault abort 503 voting-svc.emojivoto-istio 90%"
    assert app.fake.calls_to("chat.postMessage") == []


def test_an_expired_approval_loses_its_button_in_the_channel(make_slack_app: Callable[..., SlackApp]) -> None:
    policy = {"roles": ROLES, "two_person_namespaces": ["emojivoto-istio"], "confirm": {"expires_after": 0.2}}
    app = make_slack_app(policy)
    with TestClient(app.app) as http:
        slack = SlackClient(http, app.fake)
        slack.command("fault delay 3s web-svc.emojivoto-istio")
        question = slack.fake.wait_for_call("chat.postMessage", "Approval needed")[0]
        time.sleep(0.3)
        assert http.portal.call(app.app.state.parts.front.expire_questions) == 1  # type: ignore[union-attr]
        update = slack.fake.wait_for_call("chat.update", "not confirmed in time")[0]
    assert update.params["channel"] == question.params["channel"]
    assert buttons(update.blocks) == {}
    assert [(r.outcome, r.message) for r in audit_rows(app.store)] == [
        ("refused", "not confirmed in time; nothing was done")
    ]


# The two-person rule is bound to the question, not to the button: a press forged from a token
# (anyone in the channel can read a button's value) must not switch one kind of answer for the other.


def test_the_askers_own_confirm_does_not_run_a_two_person_question(
    make_slack_app: Callable[..., SlackApp],
) -> None:
    app = make_slack_app({"roles": ROLES, "two_person_namespaces": ["emojivoto-istio"]})
    with TestClient(app.app) as http:
        slack = SlackClient(http, app.fake)
        slack.command("fault delay 3s web-svc.emojivoto-istio")
        question = slack.fake.wait_for_call("chat.postMessage", "Approval needed")[0]
        token = buttons(question.blocks)[render.ACTION_APPROVE]
        slack.press(render.ACTION_CONFIRM, token, user="U0OPS")
        refusal = slack.fake.wait_for_call("chat.postEphemeral", "Confirm does not run it")[0]
        assert refusal.params["user"] == "U0OPS"
        assert audit_rows(app.store) == []
        assert len(app.app.state.parts.confirmations) == 1
        # Still open for a second person.
        slack.press(render.ACTION_APPROVE, token, user="U0DEV1")
        slack.fake.wait_for_call("chat.postMessage", "Stop now")
        (row,) = wait_audit(app.store, 1)
    assert row.message.startswith("[approved by dev1 (T0TEST/U0DEV1)]")


def test_approve_does_not_answer_a_one_person_question(slack: SlackClient, slack_app: SlackApp) -> None:
    token = ask(slack)
    slack.press(render.ACTION_APPROVE, token, user="U0ADMIN")
    refusal = slack.fake.wait_for_call("chat.postEphemeral", "needs no approval")[0]
    assert refusal.params["user"] == "U0ADMIN"
    assert "only <@U0OPS>, who asked, can confirm it" in refusal.all_text()
    # Not even by the asker: their answer is Confirm.
    slack.press(render.ACTION_APPROVE, token, user="U0OPS")
    slack.fake.wait_for_call("chat.postEphemeral", "needs no approval", count=2)
    assert audit_rows(slack_app.store) == []
    assert slack.fake.calls_to("chat.postMessage") == []
    slack.press(render.ACTION_CONFIRM, token)
    (row,) = wait_audit(slack_app.store, 1)
    assert row.message.startswith("[confirmed]")


def test_the_asker_cannot_approve_their_own_two_person_question(
    make_slack_app: Callable[..., SlackApp],
) -> None:
    app = make_slack_app({"roles": ROLES, "two_person_namespaces": ["emojivoto-istio"]})
    with TestClient(app.app) as http:
        slack = SlackClient(http, app.fake)
        slack.command("fault delay 3s web-svc.emojivoto-istio", user="U0ADMIN")
        question = slack.fake.wait_for_call("chat.postMessage", "Approval needed")[0]
        slack.press(render.ACTION_APPROVE, buttons(question.blocks)[render.ACTION_APPROVE], user="U0ADMIN")
        slack.fake.wait_for_call("chat.postEphemeral", "another authorized person must approve it")
        assert audit_rows(app.store) == []
        assert len(app.app.state.parts.confirmations) == 1
    assert [c for c in app.fake.calls_to("chat.postMessage") if "Stop now" in c.all_text()] == []
