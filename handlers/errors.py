"""Errors a verb raises while parsing or validating; the pipeline turns them into a refused Reply."""

from __future__ import annotations

from bot.store.values import Target


class UsageError(Exception):
    """The command is malformed; `usage` shows the right form."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage

    def __str__(self) -> str:
        return f"{self.message}\nUsage: {self.usage}"


class Refused(Exception):
    """Well-formed but not allowed (policy, protected namespace, missing service…); `target` is
    what it was about, so the audit log can answer who tried what where."""

    def __init__(self, message: str, *, target: Target | None = None) -> None:
        super().__init__(message)
        self.target = target
