"""``meshbot run "<command>"``: the command pipeline from a terminal (``meshbot chat``, its
interactive form, is bot/cli/chat.py).

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

from bot.compose import build_pipeline
from bot.pipeline import Pipeline
from bot.settings_cli import load_settings
from core.policy import PolicyError
from core.store import Actor, Source, StoreError
from handlers.reply import Reply, reply_data
from mesh.errors import MeshError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def cli_pipeline() -> Pipeline:
    try:
        return build_pipeline(load_settings(), lazy=True)
    except (PolicyError, StoreError, MeshError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_FAILED) from None


def _exit_code(reply: Reply) -> int:
    if reply.ok:
        return EXIT_OK
    return EXIT_USAGE if reply.usage_error else EXIT_FAILED


def print_reply(reply: Reply) -> None:
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
    print_reply(reply)
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
    pipeline = cli_pipeline()
    if wait:
        # This process ends the fault itself, so it needs no lifecycle leader to promise it.
        pipeline = replace(pipeline, leadership=None)
    actor = Actor.cli(user or getpass.getuser())
    progress = typer.echo if output == "text" else (lambda _line: None)
    if not wait:
        reply = pipeline.run(command, actor=actor, source=Source.CLI, channel=channel, on_progress=progress)
        _emit(reply, output, images)
        raise typer.Exit(_exit_code(reply))
    # Ending a fault takes domain/ and the Kubernetes client: imported only for --wait.
    from bot.cli.wait import interruptible, wait_and_end

    with interruptible() as stop:
        reply = pipeline.run(command, actor=actor, source=Source.CLI, channel=channel, on_progress=progress)
        _emit(reply, output, images)
        started = [e.experiment_id for e in reply.events if e.kind == "started"]
        if not (reply.ok and started):
            raise typer.Exit(_exit_code(reply))
        ended = wait_and_end(pipeline, started[0], actor, typer.echo, stop)
    raise typer.Exit(EXIT_OK if ended else EXIT_FAILED)
