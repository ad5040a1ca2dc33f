"""``meshbot playground`` and ``meshbot demo``: a local Kubernetes API to point kubectl at."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def playground(
    seed: Annotated[str, typer.Option(help="Initial cluster state: empty, article, article-bare, large.")] = "article",
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1; 0 picks a free one.")] = 0,
    kubeconfig: Annotated[Path | None, typer.Option(help="Write a kubeconfig for the server here.")] = None,
) -> None:
    """Serve a playground Kubernetes API until interrupted."""
    raise typer.Exit(code=2)


def demo() -> None:
    """Start the playground with the seed write-up's cluster and show how to use it."""
    raise typer.Exit(code=2)
