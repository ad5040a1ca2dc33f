"""``meshbot demo``: the seed write-up's cluster in a local playground, and a /mesh prompt against it.

Everything lives in `.demo/` (kubeconfig, database, prompt history), so a newcomer can replay the
write-up — inject, expose, abort 500 at 50%, delay 3s, status, clear, audit — in a minute, with
nothing installed but meshbot; a Prometheus scraping the playground's simulated traffic makes
`summary`, `graph` and `status` show live numbers when the `prometheus` binary is there.
"""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import typer

from bot.cli.chat import chat_loop
from bot.cli.playground import playground_required
from bot.cli.prometheus_local import PrometheusUnavailable, running_prometheus
from bot.compose import build_pipeline
from bot.leadership import LeaderWatch
from bot.lifecycle import Button, Lifecycle
from bot.settings_cli import load_settings
from core.policy import PolicyError
from core.store import Actor, Experiment, StoreError
from handlers.reply import Attachment
from mesh.errors import MeshError
from mesh.install import ensure_installer_account

DEMO_DIR = Path(".demo")
# Package data, so `pip install meshbot` has it too; deploy/demo/policy.yaml links here.
DEMO_POLICY = resources.files("bot.cli") / "data" / "demo-policy.yaml"
TRAFFIC_METRICS = "/_playground/traffic/metrics"


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
        with contextlib.ExitStack() as telemetry:
            _chat(playground.url, kubeconfig, policy_file, telemetry)
    finally:
        playground.stop()


def _prometheus(playground_url: str, stack: contextlib.ExitStack) -> str | None:
    """A Prometheus scraping the playground's simulated traffic every second, or None (said in
    one line) when it cannot run: the demo works without telemetry."""
    try:
        live = stack.enter_context(
            running_prometheus(scrape=[urlsplit(playground_url).netloc], metrics_path=TRAFFIC_METRICS)
        )
    except PrometheusUnavailable as exc:
        typer.echo(f"No telemetry in this demo: {str(exc).splitlines()[0]}")
        return None
    typer.echo(
        f"Prometheus at {live.url} scrapes the playground's simulated traffic every second: "
        "summary, graph and status show it once sidecars report (inject … --restart)."
    )
    return live.url


def _chat(url: str, kubeconfig: Path, policy_file: Path, telemetry: contextlib.ExitStack) -> None:
    os.environ["KUBECONFIG"] = str(kubeconfig)
    settings = load_settings(
        database_url=f"sqlite:///{(DEMO_DIR / 'meshbot.db').resolve()}",
        auto_migrate=True,
        installer="job",
        policy_file=policy_file,
        prometheus_url=_prometheus(url, telemetry),
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
    typer.echo(f"Playground cluster (the write-up's, Istio installed) at {url}.")
    typer.echo(f"kubectl works too: KUBECONFIG={kubeconfig} .venv/bin/kubectl get pods -A")
    typer.echo(
        "Try: status · inject emojivoto-istio --restart · "
        "expose web-svc host=emoji-istio.test.net gateway=emojivoto · "
        "summary web-svc · graph · fault abort 500 50% web-svc · fault delay 3s web-svc · fault list · "
        "fault clear all · audit"
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


class TerminalNotifier:
    """The lifecycle's notifications (expiry, reminders) as lines in the demo's terminal."""

    def experiment_event(
        self, experiment: Experiment, text: str, *, final: bool = False, buttons: Sequence[Button] = ()
    ) -> None:
        typer.echo(f"\n[{experiment.id}] {text}")

    def experiment_started(self, experiment: Experiment, text: str) -> None:
        typer.echo(f"\n[{experiment.id}] started by a schedule: {text}")

    def experiment_files(self, experiment: Experiment, attachments: Sequence[Attachment]) -> None:
        typer.echo(f"\n[{experiment.id}] not shown in a terminal: {', '.join(a.title for a in attachments)}")

    def channel_message(self, channel: str, text: str, *, buttons: Sequence[Button] = ()) -> None:
        typer.echo(f"\n[{channel}] {text}")
