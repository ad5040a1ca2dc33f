"""``meshbot serve``: the Slack front, health, metrics and the JSON API, under uvicorn.

Every setting is checked before anything starts; each problem is one line on stderr, and the
process exits 1, so a broken deployment says what to fix in its first log lines.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer
import uvicorn

from bot.compose import build_pipeline
from bot.settings_cli import EXIT_CONFIG, load_settings
from bot.slack.config import slack_problems
from core.policy import PolicyError
from core.store import StoreError
from mesh.errors import MeshError

SWITCH_INTERVAL_SECONDS = 0.0005


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default MESHBOT_HOST, 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default MESHBOT_PORT, 3000).")] = None,
    socket_mode: Annotated[
        bool, typer.Option("--socket-mode", help="Receive Slack requests over Socket Mode (SLACK_APP_TOKEN).")
    ] = False,
) -> None:
    """Run meshbot's service: /slack/events, /healthz, /readyz, /metrics and /api/v1."""
    # Imported here: the web stack is heavy, and every other meshbot command starts without it.
    from bot.app import create_app

    settings = load_settings()
    problems = slack_problems(settings, socket_mode=socket_mode)
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    if problems:
        raise typer.Exit(EXIT_CONFIG)
    if settings.api_token is None:
        typer.echo("note: MESHBOT_API_TOKEN is not set: /api/v1 answers 401 to every request", err=True)
    try:
        pipeline = build_pipeline(settings)
    except (PolicyError, StoreError, MeshError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # APScheduler logs every run of every job (the 1 s sync: two lines a second); the lifecycle
    # logs what really happens — a fault ended, a revert failed — itself.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    app = create_app(
        settings, pipeline=pipeline, socket_mode=socket_mode, run_lifecycle=settings.lifecycle_enabled
    )
    # The event loop acknowledges Slack while worker threads run commands; at CPython's default
    # 5 ms switch interval each hand-over of the interpreter lock to the loop can cost 5 ms per
    # busy worker, which is what pushed acks past 100 ms under load (issue 13, bench load).
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    try:
        uvicorn.run(app, host=host or settings.host, port=port or settings.port, log_level="info")
    finally:
        pipeline.store.dispose()
        pipeline.kube.close()
