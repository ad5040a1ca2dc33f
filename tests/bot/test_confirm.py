"""bot.confirm asks from the rules a verb declares and the words the pipeline split: the policy's
command patterns, the fault a command starts, production and two-person namespaces, and the
exemption that lets one person always stop a fault."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.confirm import needs_confirmation
from core.store import Actor, ExperimentKind, Store, create_experiment
from handlers import VERBS

from .conftest import NS, context, typed

TWO_PERSON = {"two_person_namespaces": [NS]}


def ask(text: str, **policy: object) -> tuple[str, bool] | None:
    verb, command = typed(text)
    question = needs_confirmation(verb, command, context(text, **policy))  # type: ignore[arg-type]
    return None if question is None else (question.text, question.two_person)


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("install", True),
        ("uninstall", True),
        ("fault clear all", True),
        (f"mtls strict {NS}", True),
        (f"mtls permissive {NS}", False),
        (f"mtls {NS}", False),
        ("status", False),
    ],
)
def test_the_policy_command_patterns_match_the_split_words(text: str, asks: bool) -> None:
    assert (ask(text) is not None) is asks


def test_the_patterns_read_ctx_words_not_the_raw_text() -> None:
    verb, command = typed("install")
    ctx = context("install")
    ctx.command_text = "/mesh   install"  # what the person typed; the pipeline already split it
    question = needs_confirmation(verb, command, ctx)
    assert question is not None
    assert question.text == "Run `install`? Asking because `install` always asks first."


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        (f"fault abort 500 web-svc.{NS} 50%", True),
        (f"fault abort 500 web-svc.{NS} 49%", False),
        (f"fault abort 500 web-svc.{NS}", True),  # 100% unless given
        (f"fault delay 3s web-svc.{NS}", False),  # a delay never crosses the abort threshold
        ("fault list", False),
    ],
)
def test_a_fault_asks_from_the_abort_threshold(text: str, asks: bool) -> None:
    assert (ask(text) is not None) is asks


def test_a_scheduled_fault_is_judged_as_the_fault_it_will_inject() -> None:
    risky = VERBS["schedule"].parse_args([f"fault abort 500 web-svc.{NS} 60%", "at", "+1h"])
    question = needs_confirmation("schedule", risky, context("schedule …"))
    assert question is not None
    assert "it aborts 60% of requests (the policy asks from 50%)" in question.text
    mild = VERBS["schedule"].parse_args([f"fault delay 3s web-svc.{NS}", "at", "+1h"])
    assert needs_confirmation("schedule", mild, context("schedule …")) is None
    production = needs_confirmation("schedule", mild, context("schedule …", production_namespaces=[NS]))
    assert production is not None and f"{NS} is a production namespace" in production.text


def test_any_fault_in_a_production_namespace_asks() -> None:
    assert ask(f"fault delay 3s web-svc.{NS}", production_namespaces=[NS]) == (
        f"Run `fault delay 3s web-svc.{NS}`? Asking because {NS} is a production namespace.",
        False,
    )
    assert ask("fault delay 3s web-svc.default", production_namespaces=[NS]) is None


@pytest.mark.parametrize(
    ("text", "two_person"),
    [
        (f"fault delay 3s web-svc.{NS}", True),
        (f"inject {NS}", True),
        (f"mtls strict {NS}", True),
        ("inject default", None),
        # Looking never needs anyone else.
        ("fault list", None),
        (f"mtls {NS}", None),
        ("status", None),
        # Stopping a fault must always be possible for one person.
        (f"fault clear web-svc.{NS}", None),
        # Every namespace includes the two-person one.
        ("fault clear all", True),
        ("install", True),
    ],
)
def test_two_person_namespaces(text: str, two_person: bool | None) -> None:
    asked = ask(text, **TWO_PERSON)
    if two_person is None:
        assert asked is None
        return
    assert asked is not None
    assert asked[1] is two_person
    assert ("a second person must approve changes in this namespace" in asked[0]) is two_person


def test_without_two_person_namespaces_nothing_needs_a_second_person() -> None:
    assert ask("fault clear all") == (
        "Run `fault clear all`? Asking because `fault clear all` always asks first.",
        False,
    )
    assert ask(f"fault delay 3s web-svc.{NS}") is None


def test_a_protected_namespace_that_is_also_two_person_asks_for_a_second_admin() -> None:
    asked = ask("inject istio-system", two_person_namespaces=["istio-system"])
    assert asked is not None and asked[1] is True


def test_clearing_one_experiment_by_id_is_exempt_in_a_two_person_namespace(store: Store) -> None:
    with store.write() as session:
        experiment_id = create_experiment(
            session=session,
            kind=ExperimentKind.DELAY,
            parameters={"delay_ms": 3000, "percentage": 100},
            cluster="default",
            namespace=NS,
            service="web-svc",
            duration=timedelta(minutes=10),
            created_by=Actor("U0OPS"),
        ).id
    clear = f"fault clear {experiment_id}"
    verb, command = typed(clear)
    assert needs_confirmation(verb, command, context(clear, store=store, **TWO_PERSON)) is None
    # Extending the same experiment keeps it running: that needs the second person.
    extend = f"fault extend {experiment_id} 5m"
    verb, command = typed(extend)
    question = needs_confirmation(verb, command, context(extend, store=store, **TWO_PERSON))
    assert question is not None and question.two_person


@pytest.mark.parametrize(
    "text", ["inject kube-system", "uninject istio-system", "mtls permissive istio-system"]
)
def test_changes_in_a_protected_namespace_ask_even_an_admin_first(text: str) -> None:
    # Denying non-admins is authz's job; an admin changing what every namespace depends on is
    # still asked, as the safety review wanted, instead of going through with no word.
    asked = ask(text)
    assert asked is not None
    namespace = text.split()[-1]
    assert asked == (f"Run `{text}`? Asking because namespace {namespace} is protected by policy.", False)


def test_looking_at_a_protected_namespace_does_not_ask() -> None:
    assert ask("mtls istio-system") is None
