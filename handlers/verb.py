"""The contract every verb module meets, so the registry and the pipeline can treat them alike."""

from __future__ import annotations

from typing import Any, Protocol

from handlers.context import Context
from handlers.reply import Reply


class Verb(Protocol):
    VERB: str
    HELP: str
    USAGE: str

    def parse_args(self, args: list[str]) -> Any: ...

    def handle(self, command: Any, ctx: Context) -> Reply: ...
