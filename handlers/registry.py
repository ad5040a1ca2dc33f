"""The registry's types: one record per verb, holding its module and the rules it declared.

``VERBS`` is the one registry. It lives here, below the verb modules, so that ``help`` (which
lists it) can import it at module level; ``handlers/__init__`` fills it once with every verb
module. Python runs a package's ``__init__`` before any of its modules can be used, so nobody
sees it empty. Tests build their own ``Registry`` to try registration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, cast

from handlers.context import Context
from handlers.reply import Reply
from handlers.verb import Access, Verb


@dataclass(frozen=True)
class Registered:
    """A verb as the registry holds it: the module that parses and handles it, and its rules."""

    module: Verb
    rules: Callable[[Any], Access]

    # The module's own names and functions, so callers (the pipeline, help) use a record as they
    # used the module it wraps.
    @property
    def VERB(self) -> str:
        return self.module.VERB

    @property
    def HELP(self) -> str:
        return self.module.HELP

    @property
    def USAGE(self) -> str:
        return self.module.USAGE

    def parse_args(self, args: list[str]) -> Any:
        return self.module.parse_args(args)

    def handle(self, command: Any, ctx: Context) -> Reply:
        return self.module.handle(command, ctx)


class MissingRules(TypeError):
    """A verb module declares no rules: nobody has decided who may run it, so it may not load."""


_CONTRACT = ("VERB", "HELP", "USAGE", "parse_args", "rules", "handle")


def register(module: ModuleType) -> Registered:
    missing = [name for name in _CONTRACT if not hasattr(module, name)]
    if "rules" in missing:
        raise MissingRules(
            f"{module.__name__} declares no `rules(command) -> Access`: say which role runs it, "
            "whether it only reads and which namespace it acts on (see handlers/verb.py)"
        )
    if missing:
        raise TypeError(f"{module.__name__} is not a verb module: it lacks {', '.join(missing)}")
    verb = cast(Verb, module)
    return Registered(module=verb, rules=verb.rules)


class Registry(Mapping[str, Registered]):
    """Verb name → its record; filled once, read-only afterwards."""

    def __init__(self) -> None:
        self._records: dict[str, Registered] = {}
        self._filled = False

    def fill(self, modules: tuple[ModuleType, ...]) -> None:
        if self._filled:
            raise RuntimeError("the verb registry is filled once, by handlers/__init__")
        for module in modules:
            record = register(module)
            if record.VERB in self._records:
                raise ValueError(f"two modules register the verb {record.VERB!r}")
            self._records[record.VERB] = record
        self._filled = True

    def __getitem__(self, verb: str) -> Registered:
        return self._records[verb]

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)


VERBS = Registry()
