"""bot.authz decides from the rules a verb declares: every role against read-only and changing
commands, protected namespaces and commands that reach every namespace."""

from __future__ import annotations

from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest

from bot.authz import RoleAuthorizer, requirement
from core.store import Actor, ExperimentKind, Store, create_experiment, create_schedule, set_binding
from handlers import VERBS
from handlers.registry import Registry
from handlers.verb import Access, Namespace

from .conftest import NS, context, typed

READS = ("status", "fault list", f"mtls {NS}", "audit", "schedules", "dashboard", "help")
IN_OWN_NAMESPACE = (
    f"fault delay 3s web-svc.{NS}",
    f"inject {NS}",
    f"expose web-svc.{NS} host=a.test",
    f"unexpose a.test -n {NS}",
)
ELSEWHERE = ("fault delay 3s web-svc.default", "inject default", "use default", "unexpose a.test -n default")
PROTECTED = (
    "inject istio-system",
    "fault abort 500 web-svc.kube-system",
    "mtls strict istio-system",
    "unexpose a.test -n istio-system",
)
EVERYWHERE = ("fault clear all", "install", "uninstall")

# (user, commands, allowed): the operator's binding lists only emojivoto-istio.
MATRIX = [
    *[(user, text, True) for user in ("U0VIEW", "U0OPS", "U0ADMIN") for text in READS],
    *[("U0VIEW", text, False) for text in IN_OWN_NAMESPACE + ELSEWHERE + PROTECTED + EVERYWHERE],
    *[("U0OPS", text, True) for text in IN_OWN_NAMESPACE],
    *[("U0OPS", text, False) for text in ELSEWHERE + PROTECTED + EVERYWHERE],
    *[("U0ADMIN", text, True) for text in IN_OWN_NAMESPACE + ELSEWHERE + PROTECTED + EVERYWHERE],
]


@pytest.mark.parametrize(("user", "text", "allowed"), MATRIX)
def test_every_role_against_every_kind_of_command(user: str, text: str, allowed: bool) -> None:
    verb, command = typed(text)
    denial = RoleAuthorizer()(verb, command, context(text, user=user))
    assert (denial is None) is allowed, denial


def test_a_protected_namespace_needs_admin_and_the_denial_says_why() -> None:
    verb, command = typed("inject istio-system")
    assert RoleAuthorizer()(verb, command, context("inject istio-system")) == (
        "`inject` needs the admin role (namespace istio-system is protected by policy); you have: "
        f"operator in {NS}, viewer. Ask an admin to add you to `roles.admin` in meshbot's policy file."
    )


@pytest.mark.parametrize(
    ("text", "because"),
    [
        ("fault clear all", "it clears faults in every namespace"),
        ("install", "it changes the control plane every namespace uses"),
    ],
)
def test_a_command_reaching_every_namespace_needs_an_unscoped_admin(text: str, because: str) -> None:
    verb, command = typed(text)
    denial = RoleAuthorizer()(verb, command, context(text))
    assert denial is not None and f"needs the admin role ({because})" in denial
    # An admin bound to some namespaces does not cover all of them.
    scoped = {"admin": {"users": ["U0ADMIN"], "namespaces": [NS]}}
    assert RoleAuthorizer()(verb, command, context(text, user="U0ADMIN", roles=scoped)) is not None


def test_a_command_naming_no_namespace_asks_for_one_when_the_channel_has_no_default() -> None:
    verb, command = typed("unexpose web.test")
    assert RoleAuthorizer()(verb, command, context("unexpose web.test")) == (
        "`unexpose` needs the operator role for the namespace it acts on, and none was named: "
        f"name the namespace (you have: operator in {NS}, viewer)."
    )
    # The policy's default namespace stands in for the channel's.
    assert RoleAuthorizer()(verb, command, context("unexpose web.test", default_namespace=NS)) is None


def test_the_channel_binding_is_the_namespace_of_a_command_that_names_none(store: Store) -> None:
    with store.write() as session:
        set_binding(
            session=session, channel="C0CHAOS", cluster="default", namespace=NS, set_by=Actor("U0ADMIN")
        )
    verb, command = typed("fault delay 3s web-svc")
    assert (
        requirement(
            verb, command, context("fault delay 3s web-svc", store=store, channel="C0CHAOS")
        ).namespace
        == NS
    )
    assert RoleAuthorizer()(verb, command, context("x", store=store, channel="C0CHAOS")) is None


def test_an_experiment_id_acts_in_the_experiment_namespace(store: Store) -> None:
    with store.write() as session:
        experiment_id = create_experiment(
            session=session,
            kind=ExperimentKind.DELAY,
            parameters={"delay_ms": 3000, "percentage": 100},
            cluster="default",
            namespace="default",
            service="web-svc",
            duration=timedelta(minutes=10),
            created_by=Actor("U0ADMIN"),
        ).id
    for text in (f"fault extend {experiment_id} 5m", f"fault clear {experiment_id}"):
        verb, command = typed(text)
        assert requirement(verb, command, context(text, store=store)).namespace == "default"
        assert RoleAuthorizer()(verb, command, context(text, store=store)) is not None
        assert RoleAuthorizer()(verb, command, context(text, user="U0ADMIN", store=store)) is None


def test_a_schedule_id_acts_in_the_namespace_its_fault_runs_in(store: Store) -> None:
    with store.write() as session:
        named = create_schedule(
            session=session,
            command=f"fault delay 3s web-svc -n {NS}",
            channel="C0CHAOS",
            created_by=Actor("U0OPS"),
            run_at=None,
            cron="0 14 * * 2",
        ).id
        # An old schedule without -n: its channel's binding, not the asking channel's.
        unnamed = create_schedule(
            session=session,
            command="fault delay 3s web-svc",
            channel="C0OTHER",
            created_by=Actor("U0OPS"),
            cron="0 14 * * 2",
        ).id
        set_binding(
            session=session, channel="C0OTHER", cluster="default", namespace="default", set_by=Actor("U0OPS")
        )
    for verb in ("pause", "resume", "unschedule", "skip", "postpone"):
        command = VERBS[verb].parse_args([named])
        assert requirement(verb, command, context(verb, store=store)).namespace == NS
        assert RoleAuthorizer()(verb, command, context(verb, store=store)) is None
        command = VERBS[verb].parse_args([unnamed])
        assert (
            requirement(verb, command, context(verb, store=store, channel="C0CHAOS")).namespace == "default"
        )


def test_a_scheduled_fault_needs_the_role_the_fault_needs_in_its_namespace() -> None:
    text = f'schedule "fault delay 3s web-svc.{NS}" at +1h'
    verb, *_ = text.split()
    command = VERBS[verb].parse_args([f"fault delay 3s web-svc.{NS}", "at", "+1h"])
    assert requirement(verb, command, context(text)).namespace == NS
    assert RoleAuthorizer()(verb, command, context(text)) is None
    assert RoleAuthorizer()(verb, command, context(text, user="U0VIEW")) is not None


def fake_verb(access: Access) -> ModuleType:
    module = ModuleType("handlers.fake")
    module.VERB = "fake"  # type: ignore[attr-defined]
    module.HELP = "a verb only this test knows"  # type: ignore[attr-defined]
    module.USAGE = "fake"  # type: ignore[attr-defined]
    module.parse_args = lambda args: tuple(args)  # type: ignore[attr-defined]
    module.rules = lambda command: access  # type: ignore[attr-defined]
    module.handle = lambda command, ctx: None  # type: ignore[attr-defined]
    return module


def test_authz_knows_no_verb_only_the_rules_in_the_registry_it_is_given() -> None:
    verbs = Registry()
    verbs.fill((fake_verb(Access(role="admin", where=Namespace(NS))),))
    authorize = RoleAuthorizer(verbs=verbs)
    assert authorize("fake", (), context("fake")) == (
        f"`fake` needs the admin role; you have: operator in {NS}, viewer. "
        "Ask an admin to add you to `roles.admin` in meshbot's policy file."
    )
    assert authorize("fake", (), context("fake", user="U0ADMIN")) is None


def test_an_unregistered_verb_is_a_bug_not_a_guessed_role() -> None:
    command: Any = ()
    with pytest.raises(KeyError):
        RoleAuthorizer()("brand-new-verb", command, context("brand-new-verb"))
