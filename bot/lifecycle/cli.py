"""``meshbot lifecycle``: the lifecycle on its own — expiry, reaper, reminders, schedules — for a
deployment that runs it apart from the Slack front, or a laptop. Notifications go to the log."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import typer

from bot.compose import build_pipeline
from bot.leadership import LeaderWatch
from bot.lifecycle import Lifecycle
from bot.lifecycle.notify import LogNotifier
from bot.settings_cli import load_settings
from core.policy import PolicyError
from core.store import StoreError
from mesh.errors import MeshError


def lifecycle() -> None:
    """Run the experiment lifecycle until SIGTERM or Ctrl-C (leader election per MESHBOT_LEADER_ELECTION)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # APScheduler logs every run of the periodic sync (several a second): one line per real
    # event is what an operator reads, and a reader that stops reading must not block us.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    settings = load_settings()
    try:
        pipeline = build_pipeline(settings)
    except (PolicyError, StoreError, MeshError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    done = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    running = Lifecycle(pipeline, pipeline.kube, pipeline.store, LogNotifier(), settings)
    if isinstance(pipeline.leadership, LeaderWatch):
        pipeline.leadership.local = running
    running.start()
    typer.echo(f"meshbot lifecycle running as {running.identity}; Ctrl-C to stop.")
    try:
        done.wait()
    finally:
        running.stop()
        pipeline.store.dispose()
        pipeline.kube.close()
