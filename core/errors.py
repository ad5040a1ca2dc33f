"""Refusals every floor may raise: a well-formed request that meshbot will not carry out."""

from __future__ import annotations

from core.values import Target


class Refused(Exception):
    """Well-formed but not allowed (policy, protected namespace, missing service…); `target` is
    what it was about, so the audit log can answer who tried what where."""

    def __init__(self, message: str, *, target: Target | None = None) -> None:
        super().__init__(message)
        self.target = target
