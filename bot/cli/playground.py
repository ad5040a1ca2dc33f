"""``meshbot playground`` and ``meshbot demo``: a local Kubernetes API to point kubectl at."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

DEMO_DIR = Path(".demo")
NOT_INSTALLED = "error: the playground is not installed: pip install -e ./playground (make demo does this)"


@contextlib.contextmanager
def playground_required() -> Iterator[None]:
    """Wraps importing the playground: a missing one is one line and exit 1, not a traceback."""
    # The playground is a distribution of its own, not in meshbot's wheel or image: a plain
    # `pip install meshbot` has none.
    try:
        yield
    except ImportError as exc:
        # Only the playground itself missing; a broken import inside it keeps its traceback.
        if exc.name != "playground":
            raise
        typer.echo(NOT_INSTALLED, err=True)
        raise typer.Exit(code=1) from None


def _serve_until_interrupted(seed: str, port: int, kubeconfig: Path) -> None:
    # Imported here: every other meshbot command starts faster without the playground.
    with playground_required():
        from playground import runner

    problem = _unwritable(kubeconfig)
    if problem:
        # Checked before the server starts, so a mistyped path leaves nothing running behind.
        typer.echo(f"error: cannot write the kubeconfig to {kubeconfig}: {problem}", err=True)
        raise typer.Exit(code=2)
    try:
        playground = runner.start(seed, port=port)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    except OSError as exc:
        typer.echo(f"error: cannot listen on 127.0.0.1:{port}: {exc.strerror}", err=True)
        raise typer.Exit(code=1) from None
    try:
        path = playground.kubeconfig(kubeconfig.resolve())
    except OSError as exc:
        playground.stop()
        typer.echo(f"error: cannot write the kubeconfig to {kubeconfig}: {exc.strerror}", err=True)
        raise typer.Exit(code=1) from None
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


def _unwritable(path: Path) -> str | None:
    """Why the kubeconfig cannot be written (missing folders are created), or None."""
    if path.is_dir():
        return "it is a folder; name a file, e.g. --kubeconfig .demo/kubeconfig"
    existing = next(p for p in path.resolve().parents if p.exists())
    if not existing.is_dir():
        return f"{existing} is a file, not a folder; pick another --kubeconfig"
    if not os.access(existing, os.W_OK):
        return f"the folder {existing} is not writable; pick another --kubeconfig"
    return None


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
