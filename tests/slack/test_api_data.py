"""`data` in POST /api/v1/commands: what each verb naturally knows, in the shapes of docs/output.md."""

from __future__ import annotations

from typing import Any

from .conftest import API_TOKEN, CHANNEL, SlackClient

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def run(slack: SlackClient, command: str) -> dict[str, Any]:
    sent = {"command": command, "confirmed": True, "channel": CHANNEL}
    answer = slack.http.post("/api/v1/commands", headers=AUTH, json=sent)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body["data"]


def test_every_verb_fills_data_with_ids_targets_and_expiry(slack: SlackClient) -> None:
    started = run(slack, "fault abort 500 50% web-svc.emojivoto-istio for 5m")
    experiment_id = started["experiment_id"]
    assert started["target"] == {"cluster": "default", "namespace": "emojivoto-istio", "service": "web-svc"}
    assert (started["kind"], started["percentage"]) == ("abort", 50.0)
    assert started["expires_at"].endswith("+00:00") and started["virtual_services"]

    listed = run(slack, "fault list")
    (fault,) = listed["faults"]
    assert (fault["experiment_id"], fault["service"], fault["state"]) == (experiment_id, "web-svc", "active")
    assert fault["expires_at"] == started["expires_at"]

    status = run(slack, "status emojivoto-istio")
    assert [f["experiment_id"] for f in status["faults"]] == [experiment_id]
    assert status["target"]["namespace"] == "emojivoto-istio"

    extended = run(slack, f"fault extend {experiment_id} 5m")
    assert extended["expires_at"] > started["expires_at"]

    cleared = run(slack, f"fault clear {experiment_id}")
    assert cleared["cleared"] == [experiment_id] and cleared["failed"] == []
    assert run(slack, "fault list")["faults"] == []

    scheduled = run(slack, 'schedule "fault delay 1s web-svc.emojivoto-istio" at +2h')
    assert scheduled["schedule_id"] and scheduled["next_run"]
    assert scheduled["command"] == "fault delay 1s web-svc.emojivoto-istio"

    audit = run(slack, f"audit experiment={experiment_id}")
    assert {e["experiment_id"] for e in audit["events"]} == {experiment_id}
    assert len(audit["events"]) == 3 and audit["next_before"] is None
    assert {"id", "time", "verb", "outcome"} <= set(audit["events"][0])
