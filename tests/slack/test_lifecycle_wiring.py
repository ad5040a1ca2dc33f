"""`meshbot serve`'s app with the lifecycle on: a fault started in Slack ends on time by itself,
and its thread and parent message say so."""

from __future__ import annotations

import time
from typing import Any

import kubernetes.client
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.leadership import LeaderWatch
from bot.pipeline import Pipeline
from core.policy import Policy
from core.store import Store
from mesh.kube import for_url
from playground.runner import Playground
from tests.conftest import kube_client_for

from .conftest import API_TOKEN, ROLES, SlackClient, experiment, only_experiment_id, settings_for
from .fake_slack import FakeSlack

NS = "emojivoto-istio"


def fault_routes(pg: Playground) -> list[Any]:
    with kube_client_for(pg) as api_client:
        custom = kubernetes.client.CustomObjectsApi(api_client)
        listed = custom.list_namespaced_custom_object("networking.istio.io", "v1", NS, "virtualservices")
    return [r for vs in listed["items"] for r in vs["spec"].get("http", []) if "fault" in r]


def test_a_fault_started_in_slack_expires_by_itself_and_its_thread_says_so(
    playground: Playground, store: Store, fake_slack: FakeSlack
) -> None:
    with kube_client_for(playground) as api_client:
        kubernetes.client.CoreV1Api(api_client).create_namespace({"metadata": {"name": "meshbot"}})
    pipeline = Pipeline(
        store=store, kube=for_url(playground.url), policy=Policy.model_validate({"roles": ROLES})
    )
    settings = settings_for(
        fake_slack, lease_duration_seconds=3, lease_renew_deadline_seconds=2, lease_retry_seconds=0.2
    )
    app = create_app(settings, pipeline=pipeline, run_lifecycle=True)
    with TestClient(app) as http:
        slack = SlackClient(http, fake_slack)
        slack.command(f"fault delay 1s web-svc.{NS} for 2s")
        fake_slack.wait_for_call("chat.postMessage", "Stop now")
        experiment_id = only_experiment_id(store)
        assert len(fault_routes(playground)) == 1

        # Nobody clears it: the leader's expiry job does, and reports in the thread.
        update = fake_slack.wait_for_call("chat.update", "expired", timeout=15)[0]
        assert experiment_id in update.all_text()
        deadline = time.monotonic() + 10
        while experiment(store, experiment_id).state != "ended" and time.monotonic() < deadline:
            time.sleep(0.1)
        ended = experiment(store, experiment_id)
        assert (ended.state, ended.end_reason) == ("ended", "expired")
        assert fault_routes(playground) == []
        thread = [c for c in fake_slack.calls if c.params.get("thread_ts") == ended.thread_ts]
        assert any("expired" in c.all_text().lower() for c in thread)


def test_a_scheduled_fault_opens_its_own_thread_and_its_reminder_has_buttons(
    playground: Playground, store: Store, fake_slack: FakeSlack
) -> None:
    with kube_client_for(playground) as api_client:
        kubernetes.client.CoreV1Api(api_client).create_namespace({"metadata": {"name": "meshbot"}})
    pipeline = Pipeline(
        store=store, kube=for_url(playground.url), policy=Policy.model_validate({"roles": ROLES})
    )
    settings = settings_for(
        fake_slack,
        lease_duration_seconds=3,
        lease_renew_deadline_seconds=2,
        lease_retry_seconds=0.2,
        reminder_lead_seconds=2,
    )
    app = create_app(settings, pipeline=pipeline, run_lifecycle=True)
    with TestClient(app) as http:
        slack = SlackClient(http, fake_slack)
        slack.command(f'schedule "fault delay 1s web-svc.{NS} for 4s" at +2s')
        parent = fake_slack.wait_for_call("chat.postMessage", "Stop now", timeout=15)[0]
        # The details follow the parent into its thread, once the thread is remembered.
        in_thread = fake_slack.wait_for_call("chat.postMessage", "▶ Schedule", timeout=10)[0]
        started = experiment(store, only_experiment_id(store))
        assert parent.params["channel"] == started.channel
        assert in_thread.params["thread_ts"] == started.thread_ts
        reminder = fake_slack.wait_for_call("chat.postMessage", "ends in", timeout=10)[0]
        assert reminder.params["thread_ts"] == started.thread_ts
        labels = [e["text"]["text"] for b in reminder.blocks if b["type"] == "actions" for e in b["elements"]]
        assert labels == ["Extend 10 min", "Stop now"]


def test_a_service_whose_lease_namespace_is_missing_is_not_ready_and_refuses_faults(
    playground: Playground, store: Store, fake_slack: FakeSlack
) -> None:
    # The namespace the Lease lives in was never created: no replica can ever lead.
    kube = for_url(playground.url)
    settings = settings_for(fake_slack, lease_retry_seconds=0.2)
    pipeline = Pipeline(
        store=store,
        kube=kube,
        policy=Policy.model_validate({"roles": ROLES}),
        leadership=LeaderWatch(kube, settings),
    )
    app = create_app(settings, pipeline=pipeline, run_lifecycle=True)
    with TestClient(app) as http:
        deadline = time.monotonic() + 10
        ready = http.get("/readyz")
        while "cannot take lease" not in str(ready.json()) and time.monotonic() < deadline:
            time.sleep(0.2)
            ready = http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["reasons"]["lifecycle"] == (
            "no replica leads the lifecycle: cannot take lease meshbot/meshbot-lifecycle: 404 Not Found"
        )
        refused = http.post(
            "/api/v1/commands",
            json={"command": f"fault delay 1s web-svc.{NS} for 1m"},
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        )
        assert refused.status_code == 422
        assert refused.json()["text"].startswith("no meshbot lifecycle is leading")
        assert fault_routes(playground) == []
        status = http.post(
            "/api/v1/commands",
            json={"command": "status"},
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        )
        assert (
            "⚠ No lifecycle leads (cannot take lease meshbot/meshbot-lifecycle: 404 Not Found)"
            in (status.json()["text"])
        )
