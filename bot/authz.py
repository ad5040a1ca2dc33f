"""Who may run what from Slack: roles from the policy file, decided on team id + user id.

Three roles, each including the one below: ``viewer`` looks, ``operator`` changes a namespace (only
the namespaces its binding lists), ``admin`` changes the mesh and may act in the policy's protected
namespaces. Which role a command needs, and in which namespace, is the verb's own declaration
(``rules(command) -> Access``, handlers/verb.py), read here through the registry; this module
knows no verb. Subjects are user ids and user groups, never display names: a name can be changed
by its owner, an id cannot.

``RoleAuthorizer`` plugs into ``Pipeline.authorize``; the CLI, a local administrator, passes none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from core.policy import Policy, RoleBinding, RoleName
from core.store import Actor
from handlers import VERBS, Registered
from handlers.context import Context
from handlers.verb import Access, Everywhere, Namespace

log = logging.getLogger(__name__)

RANK: dict[RoleName, int] = {"viewer": 0, "operator": 1, "admin": 2}


@dataclass(frozen=True)
class Requirement:
    """The least role a command needs, and the namespace it must cover (None: any will do)."""

    role: RoleName
    namespace: str | None = None
    # Why admin is needed beyond the verb's own role, for the denial message.
    because: str | None = None

    def describe(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace and self.role == "operator" else ""
        return f"the {self.role} role{where}"


def rules_of(verb: str, command: Any, verbs: Mapping[str, Registered] = VERBS) -> Access:
    """The rules ``verb`` declares for ``command``. The pipeline refuses unknown verbs before it
    asks, so an unregistered one here is a bug: a KeyError, never a guessed role."""
    return verbs[verb].rules(command)


def requirement(
    verb: str, command: Any, ctx: Context, verbs: Mapping[str, Registered] = VERBS
) -> Requirement:
    return required(rules_of(verb, command, verbs), ctx)


def requirements(
    verb: str, command: Any, ctx: Context, verbs: Mapping[str, Registered] = VERBS
) -> list[Requirement]:
    """Every requirement a command must meet: its target's, and its ``also`` namespace's."""
    access = rules_of(verb, command, verbs)
    needed = [required(access, ctx)]
    other = access.also.namespace(ctx) if access.also is not None else None
    if other is not None and other != needed[0].namespace:
        extra = required(replace(access, where=Namespace(other), also=None), ctx)
        needed.append(extra if extra.because else replace(extra, because=f"this channel is bound to {other}"))
    return needed


def required(access: Access, ctx: Context) -> Requirement:
    """The role and namespace a command's declared rules come to under the channel's policy."""
    if access.read_only:
        return Requirement(access.role)
    if isinstance(access.where, Everywhere):
        return Requirement(access.role, because=access.where.because)
    assert access.where is not None  # Access refuses a changing command without one
    namespace = access.where.namespace(ctx)
    if namespace is not None and ctx.policy.is_protected(namespace):
        return Requirement("admin", namespace, because=f"namespace {namespace} is protected by policy")
    return Requirement(access.role, namespace)


# Membership of a Slack user group: (team id, group id, user id) → member?
GroupLookup = Callable[[str | None, str, str], bool]


def _no_groups(team_id: str | None, group: str, user_id: str) -> bool:
    return False


class RoleAuthorizer:
    """``Pipeline.authorize`` for Slack: None to allow, else a denial naming the role needed."""

    def __init__(self, groups: GroupLookup = _no_groups, verbs: Mapping[str, Registered] = VERBS) -> None:
        self._groups = groups
        self._verbs = verbs

    def __call__(self, verb: str, command: Any, ctx: Context) -> str | None:
        for needed in requirements(verb, command, ctx, self._verbs):
            if not self.allows(ctx.policy, ctx.actor, needed, channel=ctx.channel):
                return self._denial(verb, needed, ctx)
        return None

    def _denial(self, verb: str, needed: Requirement, ctx: Context) -> str:
        held = self.roles_of(ctx.policy, ctx.actor, channel=ctx.channel)
        have = ", ".join(held) if held else "no role"
        why = f" ({needed.because})" if needed.because else ""
        if needed.role == "operator" and needed.namespace is None:
            return (
                f"`{verb}` needs the operator role for the namespace it acts on, and none was named: "
                f"name the namespace (you have: {have})."
            )
        return (
            f"`{verb}` needs {needed.describe()}{why}; you have: {have}. "
            f"Ask an admin to add you to `roles.{needed.role}` in meshbot's policy file."
        )

    def allows(self, policy: Policy, actor: Actor, needed: Requirement, *, channel: str | None) -> bool:
        candidates = [
            binding
            for role, bindings in policy.roles.items()
            if RANK[role] >= RANK[needed.role]
            for binding in bindings
            if self._covers(binding, needed, channel)
        ]
        # User ids first: a group lookup asks Slack, and is not needed when the id is listed.
        if any(self._listed(policy, b, actor) for b in candidates):
            return True
        return any(self._in_group(policy, b, actor) for b in candidates)

    def roles_of(self, policy: Policy, actor: Actor, *, channel: str | None) -> list[str]:
        held = []
        for role, bindings in policy.roles.items():
            for binding in bindings:
                if binding.channels is not None and channel not in binding.channels:
                    continue
                if self._listed(policy, binding, actor) or self._in_group(policy, binding, actor):
                    scope = f" in {', '.join(binding.namespaces)}" if binding.namespaces is not None else ""
                    held.append(role + scope)
        return held

    @staticmethod
    def _covers(binding: RoleBinding, needed: Requirement, channel: str | None) -> bool:
        if binding.channels is not None and channel not in binding.channels:
            return False
        if binding.namespaces is None:
            return True
        # A namespace-scoped binding covers only commands that name one of its namespaces.
        return needed.role == "viewer" or needed.namespace in binding.namespaces

    @staticmethod
    def _listed(policy: Policy, binding: RoleBinding, actor: Actor) -> bool:
        if actor.team_id is None:
            # Roles are for Slack users; the CLI and the API do not come through here.
            return False
        if policy.slack_teams and actor.team_id not in policy.slack_teams:
            # Another workspace's users (shared channels, org-wide apps) match only as team/user.
            return f"{actor.team_id}/{actor.user_id}" in binding.users
        return any(s in ("*", actor.user_id, f"{actor.team_id}/{actor.user_id}") for s in binding.users)

    def _in_group(self, policy: Policy, binding: RoleBinding, actor: Actor) -> bool:
        if actor.team_id is None or (policy.slack_teams and actor.team_id not in policy.slack_teams):
            return False
        return any(self._member(actor, group) for group in binding.groups)

    def _member(self, actor: Actor, group: str) -> bool:
        try:
            return self._groups(actor.team_id, group, actor.user_id)
        except Exception:
            # Deny rather than fail the command; the lookup logged why.
            log.warning("could not read user group %s for %s; treating as not a member", group, actor.user_id)
            return False


class ScheduleOwners:
    """``Pipeline.authorize`` for scheduled runs: each run is checked as its owner, under the
    policy of the moment, so taking someone's role away stops their schedules too. An owner who
    scheduled from the CLI or the HTTP API (no Slack team) keeps the standing of that transport:
    a local administrator, whom no role was ever needed for."""

    def __init__(self, roles: RoleAuthorizer) -> None:
        self._roles = roles

    def __call__(self, verb: str, command: Any, ctx: Context) -> str | None:
        if ctx.actor.team_id is None:
            return None
        return self._roles(verb, command, ctx)
