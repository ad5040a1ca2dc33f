"""The registry's types: one record per verb, holding its name, help and usage line, and its module.

``VERBS`` is the one registry. It lives here, below the verb modules, so that ``help`` (which
lists it) can import it at module level; ``handlers/__init__`` fills it once. A verb is declared
by name, help, usage and the dotted path of its module, and the module is imported when the verb
is first parsed or handled: `meshbot run help` then lists every verb without importing what the
others need (the Kubernetes client, matplotlib). When it is imported, the module must say what its
declaration says, so the two cannot drift apart unnoticed. Tests build their own ``Registry``
from modules to try registration.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, cast

from handlers.context import Context
from handlers.reply import Reply
from handlers.verb import Access, Verb


@dataclass(frozen=True)
class Declared:
    """A verb as ``help`` shows it, and where its module lives (imported when the verb runs)."""

    VERB: str
    HELP: str
    USAGE: str
    module: str


class Registered:
    """A verb as the registry holds it: what help shows, and the module that parses and handles
    it, with the rules it declared. Callers (the pipeline, help, authz) use a record as they
    would use the module it stands for."""

    def __init__(self, declared: Declared, module: Verb | None = None) -> None:
        self.VERB, self.HELP, self.USAGE = declared.VERB, declared.HELP, declared.USAGE
        self._path = declared.module
        self._module = module
        self._lock = threading.Lock()

    @property
    def module(self) -> Verb:
        # Worker threads may run the same verb for the first time at once: one imports it.
        with self._lock:
            if self._module is None:
                self._module = self._import()
            return self._module

    def _import(self) -> Verb:
        module = register(importlib.import_module(self._path)).module
        declared = (self.VERB, self.HELP, self.USAGE)
        if declared != (module.VERB, module.HELP, module.USAGE):
            raise TypeError(
                f"{self._path} says VERB, HELP, USAGE = {(module.VERB, module.HELP, module.USAGE)!r}, "
                f"but handlers/__init__ declares {declared!r}: make them agree"
            )
        return module

    @property
    def rules(self) -> Callable[[Any], Access]:
        return self.module.rules

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
    return Registered(Declared(verb.VERB, verb.HELP, verb.USAGE, module.__name__), verb)


class Registry(Mapping[str, Registered]):
    """Verb name → its record; filled once, read-only afterwards."""

    def __init__(self) -> None:
        self._records: dict[str, Registered] = {}
        self._filled = False

    def fill(self, verbs: Iterable[ModuleType | Declared]) -> None:
        """Modules are checked now; declared verbs when their module is first used."""
        if self._filled:
            raise RuntimeError("the verb registry is filled once, by handlers/__init__")
        for verb in verbs:
            record = Registered(verb) if isinstance(verb, Declared) else register(verb)
            if record.VERB in self._records:
                raise ValueError(f"two modules register the verb {record.VERB!r}")
            self._records[record.VERB] = record
        self._filled = True

    def load_all(self) -> None:
        """Import every verb's module now: a service pays for them at start-up, not on a first
        command, and a broken verb module stops the start instead of one command."""
        for record in self._records.values():
            record.module  # noqa: B018 - read for the import it makes

    def __getitem__(self, verb: str) -> Registered:
        return self._records[verb]

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)


VERBS = Registry()
