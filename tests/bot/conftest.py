"""Policy steps called directly: a Context without a cluster, and a store only where a rule reads one."""

from __future__ import annotations

from typing import Any

from core.policy import Policy
from core.store import Actor, Source, Store
from handlers import VERBS
from handlers.context import Context

TEAM = "T0MESH"
NS = "emojivoto-istio"
ROLES: dict[str, Any] = {
    "admin": {"users": ["U0ADMIN"]},
    "operator": {"users": ["U0OPS"], "namespaces": [NS]},
    "viewer": {"users": ["*"]},
}


def context(
    text: str,
    *,
    user: str = "U0OPS",
    store: Store | None = None,
    channel: str | None = None,
    **policy: Any,
) -> Context:
    """A command as the pipeline hands it on: its words split once. Without a channel the default
    namespace is the policy's, so rules that only name namespaces never touch a store."""
    return Context(
        actor=Actor(user_id=user, team_id=TEAM, display_name=user.lower()),
        source=Source.SLACK,
        channel=channel,
        command_text=text,
        words=tuple(text.split()),
        request_id="r",
        kube=None,  # type: ignore[arg-type]  # the policy steps never reach the cluster
        store=store,  # type: ignore[arg-type]
        policy=Policy.model_validate({"roles": ROLES, **policy}),
    )


def typed(text: str) -> tuple[str, Any]:
    """The verb and its typed command, parsed by the verb itself."""
    verb, *args = text.split()
    return verb, VERBS[verb].parse_args(args)
