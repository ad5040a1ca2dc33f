"""The service's other routes: health, readiness, metrics, and the token-protected /api/v1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.pipeline import Pipeline
from core.policy import Policy
from core.store import Store
from mesh.kube import for_url
from playground.runner import Playground
from tests.support.sockets import closed_port

from .conftest import API_TOKEN, ROLES, SlackApp, SlackClient, audit_rows, settings_for, wait_audit
from .fake_slack import FakeSlack

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def test_healthz_and_readyz_when_all_is_well(slack_app: SlackApp) -> None:
    with TestClient(slack_app.app) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"ready": True})


def test_readyz_fails_when_the_database_is_not_migrated(
    playground: Playground, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    empty = Store.from_url(f"sqlite:///{tmp_path / 'empty.db'}")
    pipeline = Pipeline(store=empty, kube=for_url(playground.url), policy=Policy())
    with TestClient(create_app(settings_for(fake_slack), pipeline=pipeline)) as http:
        assert http.get("/healthz").status_code == 200
        ready = http.get("/readyz")
    empty.dispose()
    assert ready.status_code == 503
    reasons = ready.json()["reasons"]
    assert list(reasons) == ["database"]
    assert "has no meshbot schema" in reasons["database"] and "meshbot migrate" in reasons["database"]


def test_readyz_fails_when_the_cluster_is_unreachable(store: Store, fake_slack: FakeSlack) -> None:
    pipeline = Pipeline(store=store, kube=for_url(f"http://127.0.0.1:{closed_port()}"), policy=Policy())
    with TestClient(create_app(settings_for(fake_slack), pipeline=pipeline)) as http:
        ready = http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["reasons"]["kubernetes"].startswith(
        "cannot reach the Kubernetes API at http://127.0.0.1:"
    )


def test_metrics_count_commands_ack_latency_and_active_experiments(slack: SlackClient) -> None:
    slack.command("fault delay 3s web-svc.emojivoto-istio")
    slack.fake.wait_for_call("chat.postMessage", "Stop now")
    slack.command("fault delay 3s web-svc.emojivoto-istio", user="U0VIEW")
    slack.fake.wait_for_call("response_url", "needs the operator role")
    response = slack.http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'meshbot_commands_total{outcome="ok",source="slack",verb="fault"} 1.0' in text
    assert 'meshbot_commands_total{outcome="denied",source="slack",verb="fault"} 1.0' in text
    assert 'meshbot_slack_ack_seconds_count{kind="command"} 2.0' in text
    assert 'meshbot_slack_ack_seconds_bucket{kind="command",le="3.0"} 2.0' in text
    assert "meshbot_active_experiments 1.0" in text


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": f"Basic {API_TOKEN}"}],
    ids=["none", "wrong", "not-bearer"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v1/experiments"), ("GET", "/api/v1/audit"), ("POST", "/api/v1/commands")],
)
def test_the_api_wants_the_bearer_token(
    slack: SlackClient, headers: dict[str, str], method: str, path: str
) -> None:
    response = slack.http.request(method, path, headers=headers, json={"command": "fault list"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_without_a_configured_token_the_api_is_off(make_slack_app: Callable[..., SlackApp]) -> None:
    app = make_slack_app(api_token=None)
    with TestClient(app.app) as http:
        response = http.get("/api/v1/experiments", headers={"Authorization": "Bearer "})
    assert response.status_code == 401
    assert "MESHBOT_API_TOKEN" in response.json()["detail"]


def test_api_commands_run_through_the_pipeline_as_source_api(slack: SlackClient, slack_app: SlackApp) -> None:
    http = slack.http
    ran = http.post(
        "/api/v1/commands",
        headers=AUTH,
        json={"command": "fault delay 3s web-svc.emojivoto-istio", "actor": "ci"},
    )
    assert ran.status_code == 200, ran.text
    body: dict[str, Any] = ran.json()
    assert body["outcome"] == "ok" and body["experiment_id"].startswith("exp-")
    assert body["target"] == {"cluster": "default", "namespace": "emojivoto-istio", "service": "web-svc"}
    listed = http.get("/api/v1/experiments", headers=AUTH).json()["experiments"]
    assert [e["id"] for e in listed] == [body["experiment_id"]]
    (row,) = audit_rows(slack_app.store)
    assert (row.source, row.actor_user_id) == ("api", "api:ci")
    audit = http.get("/api/v1/audit", headers=AUTH, params={"source": "api", "verb": "fault"}).json()
    assert [e["experiment_id"] for e in audit["events"]] == [body["experiment_id"]]
    bad = http.get("/api/v1/audit", headers=AUTH, params={"servcie": "web-svc"})
    assert bad.status_code == 400 and "did you mean service=" in bad.json()["detail"]
    refused = http.post("/api/v1/commands", headers=AUTH, json={"command": "fault delay"})
    assert refused.status_code == 400


def test_risky_api_commands_need_confirmed_true(slack: SlackClient, slack_app: SlackApp) -> None:
    http = slack.http
    http.post("/api/v1/commands", headers=AUTH, json={"command": "fault delay 3s web-svc.emojivoto-istio"})
    asked = http.post("/api/v1/commands", headers=AUTH, json={"command": "fault clear all"})
    assert asked.status_code == 409
    assert asked.json()["question"].startswith("Run `fault clear all`?")
    assert len(audit_rows(slack_app.store)) == 1
    done = http.post("/api/v1/commands", headers=AUTH, json={"command": "fault clear all", "confirmed": True})
    assert done.status_code == 200 and "cleared" in done.json()["text"]
    rows = wait_audit(slack_app.store, 2)
    assert rows[-1].message.startswith("[confirmed]")


def test_an_api_clear_finishes_the_slack_thread_too(slack: SlackClient, slack_app: SlackApp) -> None:
    slack.command("fault delay 3s web-svc.emojivoto-istio")
    parent = slack.fake.wait_for_call("chat.postMessage", "Stop now")[0]
    experiment_id = parent.text.split(":")[0].removeprefix("Fault ")
    cleared = slack.http.post(
        "/api/v1/commands", headers=AUTH, json={"command": f"fault clear {experiment_id}"}
    )
    assert cleared.status_code == 200
    assert "Ended: cleared by api" in slack.fake.wait_for_call("chat.update")[0].all_text()


def test_two_person_namespaces_cannot_be_changed_from_the_api(
    make_slack_app: Callable[..., SlackApp],
) -> None:
    app = make_slack_app({"roles": ROLES, "two_person_namespaces": ["emojivoto-istio"]})
    with TestClient(app.app) as http:
        response = http.post(
            "/api/v1/commands",
            headers=AUTH,
            json={"command": "fault delay 3s web-svc.emojivoto-istio", "confirmed": True},
        )
    assert response.status_code == 409
    assert response.json()["hint"] == "a second person must approve this in Slack"
    assert audit_rows(app.store) == []


def test_without_slack_settings_the_slack_route_is_404_and_the_rest_works(
    playground: Playground, store: Store, fake_slack: FakeSlack
) -> None:
    pipeline = Pipeline(store=store, kube=for_url(playground.url), policy=Policy())
    app = create_app(settings_for(fake_slack, slack_bot_token=None), pipeline=pipeline)
    with TestClient(app) as http:
        assert http.post("/slack/events", content="x").status_code == 404
        assert http.get("/readyz").status_code == 200
        assert http.get("/api/v1/experiments", headers=AUTH).json() == {"experiments": []}
