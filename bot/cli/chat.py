"""``meshbot chat``: an interactive /mesh prompt, one command per line through the same pipeline
as ``meshbot run``. A module of its own because the prompt (prompt_toolkit) is only for it."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.prompt import (
    LineReader,
    MeshCompleter,
    is_terminal,
    messages_above,
    plain_reader,
    terminal_reader,
)
from bot.cli.run import cli_pipeline, print_reply
from bot.pipeline import Pipeline
from core.store import Actor, Source
from handlers import VERBS
from mesh.namespaces import names_to_complete


def chat(
    user: Annotated[
        str | None, typer.Option(help="Who to record as the actor (default: your login).")
    ] = None,
    channel: Annotated[str, typer.Option(help="The channel whose default namespace applies.")] = "cli",
) -> None:
    """An interactive /mesh prompt: one command per line; `exit` or Ctrl-D to leave."""
    actor = Actor.cli(user or getpass.getuser())
    chat_loop(cli_pipeline(), actor, channel, history=Path.home() / ".meshbot_history")


def chat_loop(
    pipeline: Pipeline,
    actor: Actor,
    channel: str,
    *,
    history: Path | None = None,
    read: LineReader | None = None,
) -> None:
    """One command per line until `exit` or end of input. ``read``: where lines come from (a
    prompt with history and completion at a terminal, plain lines otherwise)."""
    if read is None:
        read = terminal_reader(completer_for(pipeline), history) if is_terminal() else plain_reader
    typer.echo("meshbot chat — type `help` for commands, `exit` to leave.")
    with messages_above(read):
        while True:
            try:
                line = read().strip()
            except (EOFError, KeyboardInterrupt):
                typer.echo("")
                break
            if line in ("exit", "quit"):
                break
            if not line:
                continue
            reply = pipeline.run(
                line, actor=actor, source=Source.CLI, channel=channel, on_progress=typer.echo
            )
            print_reply(reply)


def completer_for(pipeline: Pipeline) -> MeshCompleter:
    return MeshCompleter(VERBS, lambda: names_to_complete(pipeline.kube))
