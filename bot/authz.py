"""Who may run what from Slack: roles from the policy file, decided on team id + user id.

Three roles, each including the one below: ``viewer`` looks (status, fault list, audit, dashboard,
help), ``operator`` changes a namespace (fault, expose, inject, use — only in the namespaces its
binding lists), ``admin`` changes the mesh (install, uninstall, mtls, fault clear all) and may act
in the policy's protected namespaces. Subjects are user ids and user groups, never display names:
a name can be changed by its owner, an id cannot.

``RoleAuthorizer`` plugs into ``Pipeline.authorize``; the CLI, a local administrator, passes none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.policy import Policy, RoleBinding, RoleName
from core.store import Actor, ExperimentNotFound, ScheduleNotFound, get_binding, get_experiment, get_schedule
from handlers import fault
from handlers.context import Context
from handlers.errors import UsageError
from handlers.parse import ParseError, words

log = logging.getLogger(__name__)

RANK: dict[RoleName, int] = {"viewer": 0, "operator": 1, "admin": 2}

# Verbs not listed need admin: a verb added later is locked until someone decides who may use it.
VERB_ROLES: dict[str, RoleName] = {
    "help": "viewer",
    "status": "viewer",
    "audit": "viewer",
    "dashboard": "viewer",
    "schedules": "viewer",
    "fault": "operator",
    "expose": "operator",
    "unexpose": "operator",
    "inject": "operator",
    "uninject": "operator",
    "use": "operator",
    "schedule": "operator",
    "unschedule": "operator",
    "pause": "operator",
    "resume": "operator",
    "skip": "operator",
    "postpone": "operator",
    "install": "admin",
    "uninstall": "admin",
    "mtls": "admin",
}


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


def target_namespace(verb: str, command: Any, ctx: Context) -> str | None:
    """The namespace a command acts on, as its handler will resolve it, or None when it names none.

    Commands are read by shape, not type, so verbs added by other modules work unchanged: an
    explicit ``namespace``, a ``service`` reference carrying one, or an experiment id whose
    experiment lives in one; then the channel's default.
    """
    explicit = getattr(command, "namespace", None)
    if isinstance(explicit, str) and explicit:
        return explicit
    service = getattr(command, "service", None)
    service_namespace = getattr(service, "namespace", None)
    if isinstance(service_namespace, str) and service_namespace:
        return service_namespace
    experiment_id = getattr(command, "experiment_id", None)
    if isinstance(experiment_id, str) and experiment_id:
        with ctx.store.read() as session:
            try:
                return get_experiment(session=session, experiment_id=experiment_id).namespace
            except ExperimentNotFound:
                return None
    schedule_id = getattr(command, "schedule_id", None)
    if isinstance(schedule_id, str) and schedule_id:
        return _schedule_namespace(schedule_id, ctx)
    return ctx.default_namespace()


def _schedule_namespace(schedule_id: str, ctx: Context) -> str | None:
    """The namespace a scheduled fault command acts on: named in it, else its channel's default."""
    with ctx.store.read() as session:
        try:
            schedule = get_schedule(session=session, schedule_id=schedule_id)
        except ScheduleNotFound:
            return None
        text, channel = schedule.command, schedule.channel
        binding = get_binding(session=session, channel=channel) if channel else None
    try:
        parts = words(text)
        inner = fault.parse_args(parts[1:] if parts[:1] == ["fault"] else parts)
    except (ParseError, UsageError):
        return None
    named = getattr(getattr(inner, "service", None), "namespace", None)
    return named or (binding.namespace if binding is not None else ctx.policy.default_namespace)


def requirement(verb: str, command: Any, ctx: Context) -> Requirement:
    role = VERB_ROLES.get(verb, "admin")
    # `fault list` only looks; `fault clear all` reaches into every namespace.
    if isinstance(command, fault.ListCommand):
        return Requirement("viewer")
    # `mtls` without a mode only shows the effective modes.
    if verb == "mtls" and getattr(command, "mode", "set") is None:
        return Requirement("viewer")
    if isinstance(command, fault.ClearCommand) and command.everything:
        return Requirement("admin", because="it clears faults in every namespace")
    if role == "viewer":
        return Requirement("viewer")
    namespace = target_namespace(verb, command, ctx)
    if namespace is not None and ctx.policy.is_protected(namespace):
        return Requirement("admin", namespace, because=f"namespace {namespace} is protected by policy")
    return Requirement(role, namespace)


# Membership of a Slack user group: (team id, group id, user id) → member?
GroupLookup = Callable[[str | None, str, str], bool]


def _no_groups(team_id: str | None, group: str, user_id: str) -> bool:
    return False


class RoleAuthorizer:
    """``Pipeline.authorize`` for Slack: None to allow, else a denial naming the role needed."""

    def __init__(self, groups: GroupLookup = _no_groups) -> None:
        self._groups = groups

    def __call__(self, verb: str, command: Any, ctx: Context) -> str | None:
        needed = requirement(verb, command, ctx)
        if self.allows(ctx.policy, ctx.actor, needed, channel=ctx.channel):
            return None
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
