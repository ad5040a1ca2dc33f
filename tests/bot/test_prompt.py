"""The /mesh prompt as a person at a terminal uses it, through prompt_toolkit's own pipe input:
history (Up recalls the last command), completion of verbs, namespaces and services, and lines
printed by another thread while a command is typed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.input.base import PipeInput
from prompt_toolkit.output import DummyOutput

from bot.cli.chat import chat_loop, completer_for
from bot.cli.prompt import MeshCompleter, messages_above, terminal_reader
from bot.pipeline import Pipeline
from core.policy import Policy
from core.store import Actor, Store
from mesh.kube import for_url
from playground.runner import Playground

UP = "\x1b[A"
ALICE = Actor.cli("alice")


@pytest.fixture
def pipe() -> Iterator[PipeInput]:
    with create_pipe_input() as pipe_input:
        yield pipe_input


@pytest.fixture
def pipeline(playground: Playground, store: Store) -> Pipeline:
    return Pipeline(store=store, kube=for_url(playground.url), policy=Policy())


def completions(completer: MeshCompleter, text: str) -> list[str]:
    return [c.text for c in completer.get_completions(Document(text), CompleteEvent())]


def test_up_recalls_the_last_command_and_history_outlives_the_session(
    pipeline: Pipeline, pipe: PipeInput, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "history"
    read = terminal_reader(completer_for(pipeline), history, input=pipe, output=DummyOutput())
    # Typed at each prompt, as a person would: the arrow recalls `fault list`, it is no command.
    keys = iter(["fault list\r", f"{UP}\r", "exit\r"])

    def typing() -> str:
        pipe.send_text(next(keys))
        return read()

    chat_loop(pipeline, ALICE, "cli", read=typing)

    out = capsys.readouterr()
    assert out.out.count("No active faults.") == 2
    assert "unknown command" not in out.err
    assert "+fault list" in history.read_text()  # kept for the next session


def test_completion_offers_verbs_first_then_namespaces_and_services(pipeline: Pipeline) -> None:
    completer = completer_for(pipeline)
    assert completions(completer, "sta") == ["status"]
    assert completions(completer, "FA") == ["fault"]
    after_verb = completions(completer, "fault delay 3s web")
    assert "web-svc" in after_verb and "web-svc.emojivoto-istio" in after_verb
    assert completions(completer, "inject emojivoto-i") == ["emojivoto-istio"]


def test_a_cluster_that_cannot_answer_completes_nothing_after_the_verb() -> None:
    def unreachable() -> list[str]:
        raise OSError("no cluster")

    completer = MeshCompleter(["status"], unreachable)
    assert completions(completer, "status emo") == []
    assert completions(completer, "st") == ["status"]


def test_a_message_from_another_thread_leaves_the_line_being_typed_whole(
    pipe: PipeInput, tmp_path: Path
) -> None:
    read = terminal_reader(MeshCompleter([], list), None, input=pipe, output=DummyOutput())
    got: list[str] = []
    with messages_above(read):
        reader = threading.Thread(target=lambda: got.append(read()))
        reader.start()
        pipe.send_text("fault delay ")
        time.sleep(0.2)
        print("[exp-1] ⏹ Experiment exp-1 expired")  # what the lifecycle prints while one types
        pipe.send_text("3s web-svc\r")
        reader.join(10)
    assert got == ["fault delay 3s web-svc"]
