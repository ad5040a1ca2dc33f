"""The contract every verb module meets, and the rules it declares as data.

Each verb module says, next to its VERB/HELP/USAGE, ``def rules(command) -> Access``: the least
role a command needs, whether it only reads, where its namespace comes from, and what makes it
risky. ``bot.authz`` and ``bot.confirm`` read that record and nothing else, so they never learn a
verb's classes, and a verb's rules are read where the verb is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from core.policy import RoleName
from core.store import ExperimentNotFound, get_binding, get_experiment
from handlers.context import Context
from handlers.reply import Reply


class Where(Protocol):
    """How a command's target namespace is found: the namespace, or None when there is none."""

    def namespace(self, ctx: Context) -> str | None: ...


@dataclass(frozen=True)
class Namespace:
    """Named in the command (alone or in a service reference), else the channel's default."""

    named: str | None

    def namespace(self, ctx: Context) -> str | None:
        return self.named or ctx.default_namespace()


# For commands that name no namespace: whoever answers for the channel's namespace may run them.
CHANNEL_NAMESPACE = Namespace(None)


@dataclass(frozen=True)
class OfExperiment:
    """The namespace the experiment runs in; None for an unknown id (the handler then refuses)."""

    experiment_id: str

    def namespace(self, ctx: Context) -> str | None:
        with ctx.store.read() as session:
            try:
                return get_experiment(session=session, experiment_id=self.experiment_id).namespace
            except ExperimentNotFound:
                return None


@dataclass(frozen=True)
class ChannelBinding:
    """The namespace the channel is bound to now (None when it is not bound, or no channel)."""

    def namespace(self, ctx: Context) -> str | None:
        if not ctx.channel:
            return None
        with ctx.store.read() as session:
            binding = get_binding(session=session, channel=ctx.channel)
        return binding.namespace if binding is not None else None


@dataclass(frozen=True)
class Everywhere:
    """The command reaches every namespace: only an admin may run it (``because`` says why in a
    denial), and a second person approves it whenever any namespace is a two-person one."""

    because: str

    def namespace(self, ctx: Context) -> str | None:
        return None


@dataclass(frozen=True)
class Starts:
    """The fault a command starts, now or when scheduled, as the confirmation thresholds judge it."""

    kind: Literal["delay", "abort"]
    percentage: float


@dataclass(frozen=True, kw_only=True)
class Access:
    """What one command needs before it may run; a verb's ``rules(command)`` returns one."""

    role: RoleName
    # Looking needs no namespace of one's own, escapes protected namespaces and never asks.
    read_only: bool = False
    # Required once a command changes something: a rule that forgets it must not pass silently.
    where: Where | None = None
    # Stopping a fault makes things safer: one person must always be able to do it at once.
    exempt_from_two_person: bool = False
    starts: Starts | None = None
    # A second namespace whose role the command also needs: re-binding a channel takes it away
    # from the team of the namespace it was bound to, so that team's role is needed as well.
    also: Where | None = None

    def __post_init__(self) -> None:
        if not self.read_only and self.where is None:
            raise TypeError("a command that changes something must say where: give Access a `where`")
        if self.read_only and (self.starts is not None or self.exempt_from_two_person):
            raise TypeError("a read-only command neither starts nor stops a fault")
        if isinstance(self.where, Everywhere) and self.role != "admin":
            raise TypeError("a command that reaches every namespace is for admins: declare role admin")


# Commands that only look: everyone with a role may run them, in any namespace.
READS = Access(role="viewer", read_only=True)


class Verb(Protocol):
    VERB: str
    HELP: str
    USAGE: str

    def parse_args(self, args: list[str]) -> Any: ...

    def rules(self, command: Any) -> Access: ...

    def handle(self, command: Any, ctx: Context) -> Reply: ...
