"""Prometheus and Kiali down while people ask from Slack: every `summary` and `status` is
acknowledged and answered within Slack's 3 s, says in one line what is missing, and is posted once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.compose import build_kiali, build_prometheus
from bot.pipeline import Pipeline
from core.policy import Policy
from core.settings import Settings
from core.store import Actor, Source, Store
from mesh.kube import for_url
from playground.runner import Playground
from tests.resilience.figures import attempt
from tests.slack.conftest import ROLES, SlackClient, settings_for
from tests.slack.fake_slack import FakeSlack
from tests.support.sockets import closed_port, hung_server

NS = "emojivoto-istio"
SLACK_DEADLINE = 3.0


@pytest.fixture
def hung_url() -> Iterator[str]:
    """Accepts connections and never answers, like a Prometheus stuck on a heavy query."""
    with hung_server() as url:
        yield url


def _slack_with(
    playground: Playground, store: Store, fake: FakeSlack, url: str
) -> tuple[SlackClient, TestClient]:
    # As a deployment configures it: MESHBOT_PROMETHEUS_URL and MESHBOT_KIALI_URL, default time-out.
    telemetry = Settings(prometheus_url=url, kiali_url=f"{url}/kiali")
    pipeline = Pipeline(
        store=store,
        kube=for_url(playground.url),
        policy=Policy.model_validate({"roles": ROLES}),
        prometheus=build_prometheus(telemetry),
        kiali=build_kiali(telemetry),
    )
    # An exposed service, so `status` has golden signals to ask Prometheus for.
    admin = Actor(user_id="U0ADMIN", team_id="T0001", display_name="admin")
    for setup in (
        f"inject {NS} --restart",
        f"expose web-svc.{NS} host=emoji-istio.test.net gateway=emojivoto",
    ):
        reply = pipeline.run(setup, actor=admin, source=Source.CLI)
        assert reply.ok, reply.text
    http = TestClient(create_app(settings_for(fake), pipeline=pipeline))
    return SlackClient(http, fake), http


@pytest.mark.parametrize("down", ["closed", "hung"])
def test_summary_and_status_answer_within_slacks_3s_when_telemetry_is_down(
    playground: Playground, store: Store, fake_slack: FakeSlack, hung_url: str, down: str, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{closed_port()}" if down == "closed" else hung_url
    slack, http = _slack_with(playground, store, fake_slack, url)
    with http:
        for command in (f"summary web-svc -n {NS}", "status"):
            with attempt("outages"):
                sent = slack.command(command)
                assert sent.response.status_code == 200
                assert sent.elapsed <= SLACK_DEADLINE, "acknowledged within Slack's 3 s"
                started = sent.acked_at - sent.elapsed
                (answer,) = fake_slack.wait_for_call(
                    "response_url", path=f"/response/{sent.trigger_id}", timeout=15.0
                )
                said = answer.all_text()
                assert f"Prometheus at {url}" in said, said
                assert "Traceback" not in said
                missing = [line for line in answer.text.splitlines() if f"Prometheus at {url}" in line]
                assert len(missing) == 1, answer.text
                assert answer.at - started <= SLACK_DEADLINE, (
                    f"{command!r} answered {answer.at - started:.1f}s after it was sent: {answer.text}"
                )
        with attempt("outages"):
            posted = Counter(
                (c.path, c.all_text())
                for c in fake_slack.calls
                if c.method in ("response_url", "chat.postMessage")
            )
            assert all(n == 1 for n in posted.values()), [k for k, n in posted.items() if n > 1]
