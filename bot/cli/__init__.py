"""The ``meshbot`` command: one Typer app, each group of subcommands in its own module.

A subcommand's module is imported only when that subcommand runs (or ``--help`` lists them all):
the modules behind ``serve`` pull in FastAPI, uvicorn and Bolt, those behind ``run`` SQLAlchemy and
the Kubernetes client, and a person typing ``meshbot run help`` should pay for neither of the
other's (tests/test_cli_imports.py keeps it so).
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Annotated

import typer
from typer import _click as click  # typer vendors click; its groups take these types, not click's
from typer.core import TyperGroup

# name → (module, attribute): a function becomes one command, a Typer a group of them.
LAZY: dict[str, tuple[str, str]] = {
    "playground": ("bot.cli.playground", "playground"),
    "demo": ("bot.cli.demo", "demo"),
    "migrate": ("bot.cli.store", "migrate"),
    "run": ("bot.cli.run", "run"),
    "chat": ("bot.cli.chat", "chat"),
    "reap": ("bot.cli.reap", "reap"),
    "lifecycle": ("bot.lifecycle.cli", "lifecycle"),
    "serve": ("bot.cli.serve", "serve"),
    "audit": ("bot.cli.store", "audit_app"),
}


def load(name: str) -> click.Command:
    module, attribute = LAZY[name]
    target = getattr(importlib.import_module(module), attribute)
    if isinstance(target, typer.Typer):
        command = typer.main.get_command(target)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class _LazyGroup(TyperGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*LAZY, *super().list_commands(ctx)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY:
            self.commands[cmd_name] = load(cmd_name)
        return super().get_command(ctx, cmd_name)


# What a newcomer reads first in `meshbot --help`: what meshbot is, then where to start.
ABOUT = (
    "meshbot: ChatOps for Istio on Kubernetes. /mesh commands install Istio, enable sidecars, "
    "expose services and inject HTTP faults that end by themselves; every command is recorded in "
    "an append-only, hash-chained audit log.\n\n"
    "Start with `meshbot demo` (a local playground cluster and a /mesh prompt), or "
    '`meshbot run "status"` against your cluster (KUBECONFIG).'
)

app = typer.Typer(cls=_LazyGroup, no_args_is_help=True, add_completion=False, help=ABOUT)


@app.command()
def version() -> None:
    """Print meshbot's version."""
    # The installed distribution's version: the one pip and bug reports speak of.
    typer.echo(f"meshbot {metadata.version('meshbot')}")


def _print_version(asked: bool) -> None:
    if asked:
        version()
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print meshbot's version and exit.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    pass


def main() -> None:
    app()
