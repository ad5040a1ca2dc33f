"""The ``meshbot`` command: one Typer app, each group of subcommands in its own module."""

from __future__ import annotations

from importlib import metadata
from typing import Annotated

import typer

from bot.cli import demo as demo_cli
from bot.cli import playground as playground_cli
from bot.cli import reap as reap_cli
from bot.cli import run as run_cli
from bot.cli import serve as serve_cli
from bot.cli import store as store_cli
from bot.lifecycle import cli as lifecycle_cli

# What a newcomer reads first in `meshbot --help`: what meshbot is, then where to start.
ABOUT = (
    "meshbot: ChatOps for Istio on Kubernetes. /mesh commands install Istio, enable sidecars, "
    "expose services and inject HTTP faults that end by themselves; every command is recorded in "
    "an append-only, hash-chained audit log.\n\n"
    "Start with `meshbot demo` (a local playground cluster and a /mesh prompt), or "
    '`meshbot run "status"` against your cluster (KUBECONFIG).'
)

app = typer.Typer(no_args_is_help=True, add_completion=False, help=ABOUT)
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
