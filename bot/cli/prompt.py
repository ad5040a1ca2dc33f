"""The /mesh prompt at a terminal: line editing, history, completion of verbs and cluster names,
and messages from other threads (expiry, reminders) printed above the line being typed.

Off a terminal (a pipe, a test feeding commands) lines are read plainly, one per line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output
from prompt_toolkit.patch_stdout import patch_stdout

PROMPT = "mesh> "
LineReader = Callable[[], str]  # raises EOFError at the end, KeyboardInterrupt on Ctrl-C


class MeshCompleter(Completer):
    """Verbs for the first word; namespaces and services (read once, when first needed) after it."""

    def __init__(self, verbs: Iterable[str], names: Callable[[], list[str]]) -> None:
        self._verbs = sorted(verbs)
        self._names_of_cluster = names
        self._names: list[str] | None = None

    def _names_once(self) -> list[str]:
        if self._names is None:
            try:
                self._names = self._names_of_cluster()
            except Exception:
                # Completion is a convenience: a cluster that cannot answer completes nothing.
                self._names = []
        return self._names

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        word = document.get_word_before_cursor(WORD=True)
        first = not document.text_before_cursor[: len(document.text_before_cursor) - len(word)].strip()
        choices = self._verbs if first else self._names_once()
        for choice in choices:
            if choice.startswith(word.lower()):
                yield Completion(choice, start_position=-len(word))


class TerminalReader:
    """Reads a line with editing, history and completion (prompt_toolkit)."""

    def __init__(
        self,
        completer: Completer,
        history: Path | None,
        *,
        input: Input | None = None,
        output: Output | None = None,
    ) -> None:
        self.session: PromptSession[str] = PromptSession(
            history=FileHistory(str(history)) if history is not None else InMemoryHistory(),
            completer=completer,
            input=input,
            output=output,
        )

    def __call__(self) -> str:
        return self.session.prompt(PROMPT)


terminal_reader = TerminalReader


def messages_above(read: LineReader) -> AbstractContextManager[object]:
    """For a whole chat: what other threads print goes above the line being typed, not into it.
    Held for the whole session, not per prompt: a line printed as Enter is pressed would
    otherwise be flushed to a prompt that has already closed, and lost."""
    return patch_stdout(raw=True) if isinstance(read, TerminalReader) else nullcontext()


def plain_reader() -> str:
    return input(PROMPT)


def is_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()
