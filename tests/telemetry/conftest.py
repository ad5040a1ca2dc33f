"""One playground mesh and one backfilled Prometheus for the whole session.

The mesh is the write-up's: emojivoto-istio injected and restarted, web-svc exposed through the
gateway, then two VirtualServices applied by hand for the mesh's own callers (not the gateway's):
a 50% abort on web-svc and a 3 s delay on half of voting-svc's requests. The simulator turns that
cluster into three hours of Istio metrics, promtool makes blocks of them, Prometheus serves them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from bot.app import create_app
from bot.cli import app
from bot.pipeline import Pipeline
from core.policy import Policy
from core.store import Store
from core.store.migrate import upgrade
from mesh.kube import for_url
from mesh.prometheus import Prometheus
from playground import runner, seeds, traffic
from playground.runner import Playground
from tests.slack.conftest import ROLES, SlackClient, experiment, settings_for
from tests.slack.fake_slack import FakeSlack
from tests.support.prometheus import PrometheusServer, backfill, running_prometheus

NS = "emojivoto-istio"
STAND_IN_BIN = Path(__file__).resolve().parents[1] / "support" / "bin"


def mesh_vs(name: str, host: str, fault: dict[str, object]) -> dict[str, object]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "hosts": [host],
            "http": [{"fault": fault, "route": [{"destination": {"host": host}}]}],
        },
    }


@dataclass
class Mesh:
    playground: Playground
    prometheus: PrometheusServer
    env: dict[str, str]

    def run(self, *args: str, prometheus_url: str | None = None, **env: str) -> Result:
        settings = {**self.env, "MESHBOT_PROMETHEUS_URL": prometheus_url or self.prometheus.url, **env}
        result = CliRunner().invoke(app, ["run", *args], env=settings)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result


def cli_env(playground: Playground, tmp: Path) -> dict[str, str]:
    """What `meshbot run` needs to set a playground up: its kubeconfig, a store, the stand-ins."""
    return {
        "KUBECONFIG": str(playground.kubeconfig(tmp / "kubeconfig")),
        "MESHBOT_DATABASE_URL": f"sqlite:///{tmp / 'setup.db'}",
        "MESHBOT_AUTO_MIGRATE": "true",
        "PATH": f"{STAND_IN_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


@contextmanager
def slack_app(
    cluster_url: str, prometheus_url: str, tmp: Path, *, run_lifecycle: bool = False, **settings: Any
) -> Iterator[SlackClient]:
    """`meshbot serve`'s app over a playground and a Prometheus, with a fake Slack; the client
    carries the store as ``.store``."""
    store = Store.from_url(f"sqlite:///{tmp / 'meshbot.db'}")
    upgrade(store.engine)
    fake = FakeSlack().start()
    pipeline = Pipeline(
        store=store,
        kube=for_url(cluster_url),
        policy=Policy.model_validate({"roles": ROLES}),
        prometheus=Prometheus(prometheus_url),
    )
    app_ = create_app(settings_for(fake, **settings), pipeline=pipeline, run_lifecycle=run_lifecycle)
    try:
        with TestClient(app_) as http:
            client = SlackClient(http, fake)
            client.store = store  # type: ignore[attr-defined]
            yield client
    finally:
        fake.stop()
        store.dispose()


def _setup(env: dict[str, str], *commands: str) -> None:
    for command in commands:
        result = CliRunner().invoke(app, ["run", command], env=env)
        assert result.exit_code == 0, result.output


@pytest.fixture(scope="session")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    tmp = tmp_path_factory.mktemp("telemetry")
    playground = runner.start("article")
    try:
        env = cli_env(playground, tmp)
        _setup(
            env,
            f"inject {NS} --restart",
            f"expose web-svc.{NS} host=emoji-istio.test.net gateway=emojivoto",
        )
        seeds.create(
            playground.api,
            mesh_vs("web-abort", "web-svc", {"abort": {"httpStatus": 500, "percentage": {"value": 50.0}}}),
        )
        seeds.create(
            playground.api,
            mesh_vs(
                "voting-delay", "voting-svc", {"delay": {"fixedDelay": "3s", "percentage": {"value": 50.0}}}
            ),
        )
        # Samples run a few minutes past now, so every window ending now is fully covered.
        end = time.time() + 300
        data = tmp / "prometheus"
        backfill(traffic.openmetrics_history(playground.api, start=end - 3 * 3600, end=end, step=15), data)
        with running_prometheus(data_dir=data) as prometheus:
            yield Mesh(playground, prometheus, env)
    finally:
        playground.stop()


def recorded_thread_ts(slack: SlackClient, experiment_id: str) -> str:
    """The experiment's thread, once recorded: the front stores the parent message's ts just after
    Slack answers the post, so a test that saw the post polls for it (bounded)."""
    deadline = time.monotonic() + 10
    while (found := experiment(slack.store, experiment_id).thread_ts) is None:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the parent message's ts was never recorded"
        time.sleep(0.05)
    return str(found)
