"""The shipped Slack app manifest asks for what the front uses, and points at its one route."""

from __future__ import annotations

from pathlib import Path

import yaml

MANIFEST = Path(__file__).parents[2] / "deploy" / "slack-app-manifest.yaml"


def test_the_manifest_declares_the_command_interactivity_and_scopes() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/mesh"
    assert command["url"].endswith("/slack/events")
    assert manifest["settings"]["interactivity"] == {
        "is_enabled": True,
        "request_url": command["url"],
    }
    assert manifest["oauth_config"]["scopes"]["bot"] == [
        "commands",
        "chat:write",
        "usergroups:read",
        "users:read",
        "files:write",
    ]
    assert manifest["settings"]["socket_mode_enabled"] is False
    assert "connections:write" in MANIFEST.read_text()
