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
class Attachment:
    """An image a reply carries (a PNG): Slack uploads it into the thread, the CLI writes it to a
    folder, the API returns it as base64."""

    name: str  # a file name, e.g. graph-emojivoto-istio.png
    content: bytes
    title: str
    mime: str = "image/png"


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
    attachments: tuple[Attachment, ...] = ()
    # What the verb naturally knows, for scripts (`--output json`, the API); shapes in docs/output.md.
    data: dict[str, Any] = field(default_factory=dict)

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


def reply_data(reply: Reply) -> dict[str, Any]:
    """What a script gets as `data`: the verb's own, on top of what every reply knows (its
    experiment and target), so every verb fills it."""
    known: dict[str, Any] = {}
    if reply.experiment_id:
        known["experiment_id"] = reply.experiment_id
    parts = (
        ("cluster", reply.target.cluster),
        ("namespace", reply.target.namespace),
        ("service", reply.target.service),
    )
    target = {key: value for key, value in parts if value is not None}
    if target:
        known["target"] = target
    return {**known, **reply.data}
