"""The error a verb raises when a command is malformed; the pipeline turns it into a refused Reply."""

from __future__ import annotations


class UsageError(Exception):
    """The command is malformed; `usage` shows the right form."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage

    def __str__(self) -> str:
        return f"{self.message}\nUsage: {self.usage}"
