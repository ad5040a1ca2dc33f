"""The one thing a verb returns and every transport renders: text, Block Kit blocks, an outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from core.values import Outcome, Target


@dataclass(frozen=True)
class ExperimentEvent:
    """Something a command did to an experiment, for those who follow it (its Slack thread).
    ``text`` is what to say about it there."""

    kind: Literal["started", "extended", "ended"]
    experiment_id: str
    text: str


@dataclass(frozen=True)
class Reply:
    text: str
    blocks: tuple[dict[str, Any], ...] = ()
    outcome: Outcome = Outcome.OK
    ephemeral: bool = False
    experiment_id: str | None = None
    target: Target = field(default_factory=Target)
    # Set when the command was malformed: the CLI exits 2 instead of 1.
    usage_error: bool = False
    events: tuple[ExperimentEvent, ...] = ()

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.OK

    @classmethod
    def refused(cls, text: str, *, target: Target | None = None, usage_error: bool = False) -> Reply:
        return cls(
            text,
            outcome=Outcome.REFUSED,
            ephemeral=True,
            target=target or Target(),
            usage_error=usage_error,
        )

    @classmethod
    def error(cls, text: str, *, target: Target | None = None, experiment_id: str | None = None) -> Reply:
        return cls(text, outcome=Outcome.ERROR, target=target or Target(), experiment_id=experiment_id)

    @classmethod
    def denied(cls, text: str) -> Reply:
        return cls(text, outcome=Outcome.DENIED, ephemeral=True)
