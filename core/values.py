"""The store's vocabulary: who acts, on what, and the closed sets of states and outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Source(StrEnum):
    """Which front end a command came through."""

    SLACK = "slack"
    CLI = "cli"
    API = "api"
    SCHEDULER = "scheduler"


class Outcome(StrEnum):
    """How a command ended: done, refused by meshbot (malformed, guard), denied by policy, error."""

    OK = "ok"
    REFUSED = "refused"
    DENIED = "denied"
    ERROR = "error"


class ExperimentKind(StrEnum):
    DELAY = "delay"
    ABORT = "abort"


class ExperimentState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    ENDING = "ending"
    ENDED = "ended"
    FAILED = "failed"


class EndReason(StrEnum):
    EXPIRED = "expired"
    CLEARED = "cleared by user"
    HALTED = "halted"
    GUARD_TRIPPED = "guard tripped"
    FAILED = "failed"
    REVERTED_AFTER_RESTART = "reverted after restart"
    # Its routes left the cluster without meshbot (kubectl, a rebuilt cluster): nothing to undo.
    GONE = "gone from the cluster"


@dataclass(frozen=True)
class Actor:
    """Who did something: a Slack user (team + user id), a CLI user, or meshbot's scheduler."""

    user_id: str
    team_id: str | None = None
    display_name: str | None = None

    @classmethod
    def scheduler(cls) -> Actor:
        return cls(user_id="meshbot:scheduler", display_name="scheduler")

    @classmethod
    def cli(cls, login: str) -> Actor:
        return cls(user_id=f"cli:{login}", display_name=login)

    def __str__(self) -> str:
        who = f"{self.team_id}/{self.user_id}" if self.team_id else self.user_id
        return f"{self.display_name} ({who})" if self.display_name else who


@dataclass(frozen=True)
class Target:
    """What a command acted on; any part may be unknown (e.g. a malformed command)."""

    cluster: str | None = None
    namespace: str | None = None
    service: str | None = None

    def __str__(self) -> str:
        return "/".join(part or "-" for part in (self.cluster, self.namespace, self.service))
