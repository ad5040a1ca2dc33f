"""The ``meshbot`` command: one Typer app, each group of subcommands in its own module.

A subcommand's module is imported only when that subcommand runs (or ``--help`` lists them all):
the modules behind ``serve`` pull in FastAPI, uvicorn and Bolt, those behind ``run`` SQLAlchemy and
the Kubernetes client, and a person typing ``meshbot run help`` should pay for neither of the
other's (tests/test_cli_imports.py keeps it so).
"""

from __future__ import annotations

import importlib

import typer
from typer import _click as click  # typer vendors click; its groups take these types, not click's
from typer.core import TyperGroup

import bot

# name → (module, attribute): a function becomes one command, a Typer a group of them.
LAZY: dict[str, tuple[str, str]] = {
    "playground": ("bot.cli.playground", "playground"),
    "demo": ("bot.cli.demo", "demo"),
    "migrate": ("bot.cli.store", "migrate"),
    "run": ("bot.cli.run", "run"),
    "chat": ("bot.cli.run", "chat"),
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


app = typer.Typer(cls=_LazyGroup, no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])


@app.callback()
def _group() -> None:
    # With one command registered eagerly, Typer would make the app that command itself.
    pass


@app.command()
def version() -> None:
    """Print meshbot's version."""
    typer.echo(f"meshbot {bot.__version__}")


def main() -> None:
    app()
