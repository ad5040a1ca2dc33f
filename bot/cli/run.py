"""``meshbot run "<command>"`` and ``meshbot chat``: the command pipeline from a terminal.

The person at the terminal already holds the kubeconfig, so the CLI acts as a local administrator
and records them (``--user``, default the OS login) as the actor, with source ``cli``.
"""

from __future__ import annotations

import getpass
import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Literal

import typer

from bot.cli.prompt import (
    LineReader,
    MeshCompleter,
    is_terminal,
    messages_above,
    plain_reader,
    terminal_reader,
)
from bot.cli.wait import interruptible, wait_and_end
from bot.compose import build_pipeline
from bot.pipeline import Pipeline
from bot.settings_cli import load_settings
from core.policy import PolicyError
from core.store import Actor, Source, StoreError
from handlers import VERBS
from handlers.reply import Reply, reply_data
from mesh.errors import MeshError
from mesh.namespaces import names_to_complete

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _pipeline() -> Pipeline:
    try:
        return build_pipeline(load_settings(), lazy=True)
    except (PolicyError, StoreError, MeshError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_FAILED) from None


def _exit_code(reply: Reply) -> int:
    if reply.ok:
        return EXIT_OK
    return EXIT_USAGE if reply.usage_error else EXIT_FAILED


def _print(reply: Reply) -> None:
    typer.echo(reply.text, err=not reply.ok)


def write_images(reply: Reply, folder: Path | None) -> list[Path]:
    """The reply's images as files (a new temp folder unless one is named); their paths."""
    if not reply.attachments:
        return []
    target = folder or Path(tempfile.mkdtemp(prefix="meshbot-images-"))
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for attachment in reply.attachments:
        path = target / Path(attachment.name).name
        path.write_bytes(attachment.content)
        paths.append(path)
    return paths


def _emit(reply: Reply, output: str, images: Path | None) -> None:
    paths = write_images(reply, images)
    if output == "json":
        body = {"outcome": str(reply.outcome), "text": reply.text, "data": reply_data(reply)}
        typer.echo(json.dumps({**body, "images": [str(p) for p in paths]}, indent=2, default=str))
        return
    _print(reply)
    for path in paths:
        typer.echo(f"Image: {path}")


def run(
    command: Annotated[str, typer.Argument(help='The command, e.g. "fault delay 3s web-svc".')],
    user: Annotated[
        str | None, typer.Option(help="Who to record as the actor (default: your login).")
    ] = None,
    channel: Annotated[
        str | None, typer.Option(help="Act as if in this channel (its default namespace).")
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="For a fault: stay until it ends and end it (Ctrl-C ends it at once), "
            "for when no meshbot lifecycle runs against the cluster.",
        ),
    ] = False,
    output: Annotated[
        Literal["text", "json"],
        typer.Option("--output", "-o", help='text, or json: {"outcome", "text", "data", "images"}.'),
    ] = "text",
    images: Annotated[
        Path | None,
        typer.Option(help="Folder for the reply's images (PNG); a new temp folder by default."),
    ] = None,
) -> None:
    """Run one /mesh command against the configured cluster and database."""
    pipeline = _pipeline()
    if wait:
        # This process ends the fault itself, so it needs no lifecycle leader to promise it.
        pipeline = replace(pipeline, leadership=None)
    actor = Actor.cli(user or getpass.getuser())
    progress = typer.echo if output == "text" else (lambda _line: None)
    if not wait:
        reply = pipeline.run(command, actor=actor, source=Source.CLI, channel=channel, on_progress=progress)
        _emit(reply, output, images)
        raise typer.Exit(_exit_code(reply))
    with interruptible() as stop:
        reply = pipeline.run(command, actor=actor, source=Source.CLI, channel=channel, on_progress=progress)
        _emit(reply, output, images)
        started = [e.experiment_id for e in reply.events if e.kind == "started"]
        if not (reply.ok and started):
            raise typer.Exit(_exit_code(reply))
        ended = wait_and_end(pipeline, started[0], actor, typer.echo, stop)
    raise typer.Exit(EXIT_OK if ended else EXIT_FAILED)


def chat(
    user: Annotated[
        str | None, typer.Option(help="Who to record as the actor (default: your login).")
    ] = None,
    channel: Annotated[str, typer.Option(help="The channel whose default namespace applies.")] = "cli",
) -> None:
    """An interactive /mesh prompt: one command per line; `exit` or Ctrl-D to leave."""
    chat_loop(
        _pipeline(), Actor.cli(user or getpass.getuser()), channel, history=Path.home() / ".meshbot_history"
    )


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
            _print(reply)


def completer_for(pipeline: Pipeline) -> MeshCompleter:
    return MeshCompleter(VERBS, lambda: names_to_complete(pipeline.kube))
