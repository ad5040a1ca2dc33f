"""``meshbot playground`` and ``meshbot demo``: a local Kubernetes API to point kubectl at."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

DEMO_DIR = Path(".demo")


def _serve_until_interrupted(seed: str, port: int, kubeconfig: Path) -> None:
    # Imported here: every other meshbot command starts faster without the playground.
    from playground import runner

    try:
        playground = runner.start(seed, port=port)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    except OSError as exc:
        typer.echo(f"error: cannot listen on 127.0.0.1:{port}: {exc.strerror}", err=True)
        raise typer.Exit(code=1) from None
    path = playground.kubeconfig(kubeconfig.resolve())
    typer.echo(f"playground ({seed}) serving the Kubernetes API at {playground.url}")
    typer.echo(f"kubeconfig written to {path}; try:")
    typer.echo(f"  export KUBECONFIG={path}")
    typer.echo("  .venv/bin/kubectl get pods -A")
    typer.echo("Press Ctrl-C to stop.")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        playground.stop()


def playground(
    seed: Annotated[
        str, typer.Option(help="Initial state: empty, article, article-bare, large or large:NxM.")
    ] = "article",
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1; 0 picks a free one.")] = 0,
    kubeconfig: Annotated[Path, typer.Option(help="Where to write a kubeconfig for the server.")] = DEMO_DIR
    / "kubeconfig",
) -> None:
    """Serve a playground Kubernetes API on loopback until interrupted."""
    _serve_until_interrupted(seed, port, kubeconfig)
