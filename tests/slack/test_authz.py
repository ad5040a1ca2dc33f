"""Roles and confirmation rules for Slack users, read from each verb's declared rules."""

from __future__ import annotations

from typing import Any

import pytest

from bot.authz import RoleAuthorizer, requirement
from bot.confirm import needs_confirmation
from core.policy import Policy
from core.store import Actor, Source, Store
from handlers import VERBS
from handlers.context import Context

from .conftest import ROLES
from .fake_slack import TEAM_ID


def ctx(
    store: Store, user: str, text: str, policy: dict[str, Any] | None = None, channel: str = "C0CHAOS"
) -> Context:
    return Context(
        actor=Actor(user_id=user, team_id=TEAM_ID, display_name=user.lower()),
        source=Source.SLACK,
        channel=channel,
        command_text=text,
        words=tuple(text.split()),
        request_id="r",
        kube=None,  # type: ignore[arg-type]  # authorization never reaches the cluster
        store=store,
        policy=Policy.model_validate(policy if policy is not None else {"roles": ROLES}),
    )


def expose(namespace: str) -> Any:
    return VERBS["expose"].parse_args([f"web-svc.{namespace}", "host=web.test"])


def install() -> Any:
    return VERBS["install"].parse_args([])


@pytest.mark.parametrize(
    ("text", "role"),
    [
        ("status", "viewer"),
        ("install", "admin"),
        ("uninstall", "admin"),
        ("mtls emojivoto-istio", "viewer"),
        ("mtls strict emojivoto-istio", "admin"),
        ("expose web-svc.emojivoto-istio host=a.test", "operator"),
        ("inject emojivoto-istio", "operator"),
        ("inject istio-system", "admin"),  # protected by the default policy
        ("fault list", "viewer"),
        ("fault clear all", "admin"),
    ],
)
def test_each_verb_needs_its_role(store: Store, text: str, role: str) -> None:
    verb, *args = text.split()
    command = VERBS[verb].parse_args(args)
    assert requirement(verb, command, ctx(store, "U0OPS", text)).role == role


def test_an_operator_is_limited_to_its_namespaces_and_a_denial_says_what_to_ask_for(store: Store) -> None:
    authorize = RoleAuthorizer()
    assert authorize("expose", expose("emojivoto-istio"), ctx(store, "U0OPS", "expose")) is None
    denial = authorize("expose", expose("default"), ctx(store, "U0OPS", "expose"))
    assert denial == (
        "`expose` needs the operator role in namespace default; you have: operator in emojivoto-istio, "
        "viewer. Ask an admin to add you to `roles.operator` in meshbot's policy file."
    )
    assert authorize("install", install(), ctx(store, "U0ADMIN", "install")) is None
    assert "needs the admin role" in (authorize("install", install(), ctx(store, "U0OPS", "install")) or "")


def test_a_role_can_be_limited_to_channels(store: Store) -> None:
    policy = {
        "roles": {"operator": {"users": ["U0OPS"], "channels": ["C0CHAOS"]}, "viewer": {"users": ["*"]}}
    }
    authorize = RoleAuthorizer()
    assert authorize("expose", expose("x"), ctx(store, "U0OPS", "expose", policy)) is None
    assert (
        authorize("expose", expose("x"), ctx(store, "U0OPS", "expose", policy, channel="C0GENERAL"))
        is not None
    )


def test_a_group_lookup_that_fails_denies_instead_of_failing(store: Store) -> None:
    def broken(team: str | None, group: str, user: str) -> bool:
        raise OSError("Slack is down")

    denial = RoleAuthorizer(broken)("install", install(), ctx(store, "U0SRE1", "install"))
    assert denial is not None and "needs the admin role" in denial


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("install", True),
        ("uninstall", True),
        ("mtls strict emojivoto-istio", True),
        ("mtls permissive emojivoto-istio", False),
        ("status", False),
    ],
)
def test_the_policy_lists_commands_that_always_ask(store: Store, text: str, asks: bool) -> None:
    verb, *args = text.split()
    command = VERBS[verb].parse_args(args)
    assert (needs_confirmation(verb, command, ctx(store, "U0ADMIN", text)) is not None) is asks


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("abort 500 web-svc.emojivoto-istio 50%", True),
        ("abort 500 web-svc.emojivoto-istio 49%", False),
        ("delay 3s web-svc.emojivoto-istio", False),
        ("clear all", True),
        ("list", False),
    ],
)
def test_faults_ask_from_the_policy_threshold(store: Store, text: str, asks: bool) -> None:
    command = VERBS["fault"].parse_args(text.split())
    assert (needs_confirmation("fault", command, ctx(store, "U0OPS", f"fault {text}")) is not None) is asks
