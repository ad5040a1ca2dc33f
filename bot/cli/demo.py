"""``meshbot demo``: the seed write-up's cluster in a local playground, and a /mesh prompt against it.

Everything lives in `.demo/` (kubeconfig, database), so a newcomer can replay the write-up —
inject, expose, abort 500 at 50%, delay 3s, status, clear, audit — in a minute, with nothing
installed but meshbot.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from types import ModuleType

import typer

from bot.cli.playground import playground_required
from bot.cli.run import chat_loop
from bot.compose import build_pipeline
from bot.lifecycle import Button, Lifecycle
from bot.lifecycle.leadership import LeaderWatch
from bot.settings_cli import load_settings
from core.policy import PolicyError
from core.store import Actor, Experiment, StoreError
from mesh.errors import MeshError
from mesh.install import ensure_installer_account

DEMO_DIR = Path(".demo")
# Package data, so `pip install meshbot` has it too; deploy/demo/policy.yaml links here.
DEMO_POLICY = resources.files("bot.cli") / "data" / "demo-policy.yaml"


def demo() -> None:
    """Start a playground with the write-up's cluster and chat with meshbot against it."""
    with playground_required():
        from playground import runner

    DEMO_DIR.mkdir(exist_ok=True)
    with resources.as_file(DEMO_POLICY) as policy_file:
        _demo(runner, policy_file)


def _demo(runner: ModuleType, policy_file: Path) -> None:
    playground = runner.start("article")
    try:
        kubeconfig = playground.kubeconfig((DEMO_DIR / "kubeconfig").resolve())
        os.environ["KUBECONFIG"] = str(kubeconfig)
        settings = load_settings(
            database_url=f"sqlite:///{(DEMO_DIR / 'meshbot.db').resolve()}",
            auto_migrate=True,
            installer="job",
            policy_file=policy_file,
        )
        try:
            pipeline = build_pipeline(settings)
            # `install` works in the demo as on a cluster with the installer component applied.
            ensure_installer_account(
                pipeline.kube,
                namespace=settings.installer_namespace,
                service_account=settings.installer_service_account,
            )
        except (PolicyError, StoreError, MeshError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"Playground cluster (the write-up's, Istio installed) at {playground.url}.")
        typer.echo(f"kubectl works too: KUBECONFIG={kubeconfig} .venv/bin/kubectl get pods -A")
        typer.echo(
            "Try: status · inject emojivoto-istio --restart · "
            "expose web-svc host=emoji-istio.test.net gateway=emojivoto · "
            "fault abort 500 50% web-svc · fault delay 3s web-svc · fault list · fault clear all · audit"
        )
        # Faults in the demo end by themselves too: this process is the only replica, so it
        # leads without a Lease, and tells the prompt what the lifecycle did.
        lifecycle = Lifecycle(
            pipeline,
            pipeline.kube,
            pipeline.store,
            TerminalNotifier(),
            settings.model_copy(update={"leader_election": False}),
        )
        if isinstance(pipeline.leadership, LeaderWatch):
            pipeline.leadership.local = lifecycle
        lifecycle.start()
        try:
            chat_loop(pipeline, Actor.cli(getpass.getuser()), channel="cli", history=DEMO_DIR / "history")
        finally:
            lifecycle.stop()
    finally:
        playground.stop()


class TerminalNotifier:
    """The lifecycle's notifications (expiry, reminders) as lines in the demo's terminal."""

    def experiment_event(
        self, experiment: Experiment, text: str, *, final: bool = False, buttons: Sequence[Button] = ()
    ) -> None:
        typer.echo(f"\n[{experiment.id}] {text}")

    def experiment_started(self, experiment: Experiment, text: str) -> None:
        typer.echo(f"\n[{experiment.id}] started by a schedule: {text}")

    def channel_message(self, channel: str, text: str, *, buttons: Sequence[Button] = ()) -> None:
        typer.echo(f"\n[{channel}] {text}")
