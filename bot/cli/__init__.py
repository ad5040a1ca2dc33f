"""The ``meshbot`` command: one Typer app, each group of subcommands in its own module."""

from __future__ import annotations

import typer

import bot
from bot.cli import demo as demo_cli
from bot.cli import playground as playground_cli
from bot.cli import reap as reap_cli
from bot.cli import run as run_cli
from bot.cli import serve as serve_cli
from bot.cli import store as store_cli
from bot.lifecycle import cli as lifecycle_cli

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
app.command("playground")(playground_cli.playground)
app.command("demo")(demo_cli.demo)
app.command("migrate")(store_cli.migrate)
app.command("run")(run_cli.run)
app.command("chat")(run_cli.chat)
app.command("reap")(reap_cli.reap)
app.command("lifecycle")(lifecycle_cli.lifecycle)
app.command("serve")(serve_cli.serve)
app.add_typer(store_cli.audit_app, name="audit")


@app.command()
def version() -> None:
    """Print meshbot's version."""
    typer.echo(f"meshbot {bot.__version__}")


def main() -> None:
    app()
