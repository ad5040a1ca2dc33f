"""`meshbot serve` stops at start-up on missing or malformed settings: one clear line each."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app

from .conftest import BOT_TOKEN, SIGNING_SECRET

GOOD = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}


def serve(env: dict[str, str], *args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, ["serve", *args], env=env)
    return result.exit_code, result.output.splitlines()


def test_nothing_set_names_each_missing_setting_on_its_own_line() -> None:
    code, lines = serve({})
    assert code == 1
    assert lines == [
        "error: SLACK_BOT_TOKEN is not set: use the Bot User OAuth Token (xoxb-…) from the app's "
        "OAuth & Permissions page",
        "error: SLACK_SIGNING_SECRET is not set: copy the Signing Secret from the app's Basic Information "
        "page (or run with --socket-mode and SLACK_APP_TOKEN)",
    ]


@pytest.mark.parametrize(
    ("env", "args", "expected"),
    [
        (
            {**GOOD, "SLACK_BOT_TOKEN": "xoxp-user-token-secret-part"},
            (),
            "error: SLACK_BOT_TOKEN must be a bot token starting with xoxb-; this one starts with xoxp-",
        ),
        (
            {**GOOD, "SLACK_BOT_TOKEN": "hunter2-secret-part"},
            (),
            "error: SLACK_BOT_TOKEN must be a bot token starting with xoxb-; "
            "this one does not look like a Slack token",
        ),
        (
            {**GOOD, "SLACK_SIGNING_SECRET": "changeme-secret-part"},
            (),
            "error: SLACK_SIGNING_SECRET is malformed: "
            "Slack's signing secrets are 32 lower-case hexadecimal characters",
        ),
        (
            GOOD,
            ("--socket-mode",),
            "error: SLACK_APP_TOKEN is not set: Socket Mode needs an app-level token (xapp-…) with "
            "connections:write, from the app's Basic Information page",
        ),
        (
            {**GOOD, "SLACK_APP_TOKEN": "xoxb-secret-part"},
            ("--socket-mode",),
            "error: SLACK_APP_TOKEN must be an app-level token starting with xapp-; "
            "this one starts with xoxb-",
        ),
        (
            {**GOOD, "MESHBOT_API_TOKEN": "short-secret-part"[:7]},
            (),
            "error: MESHBOT_API_TOKEN is too short: use at least 16 random characters "
            "(e.g. `openssl rand -hex 32`), or unset it to turn the API off",
        ),
        (
            {**GOOD, "MESHBOT_SLACK_API_URL": "slack.com/api"},
            (),
            "error: MESHBOT_SLACK_API_URL must be an http(s) URL like https://slack.com/api/, "
            "not 'slack.com/api'",
        ),
        (
            {**GOOD, "MESHBOT_PORT": "http"},
            (),
            "error: MESHBOT_PORT=http is not a whole number: use digits, e.g. 3000",
        ),
    ],
    ids=[
        "user-token",
        "not-a-token",
        "placeholder-secret",
        "socket-no-app-token",
        "socket-bot-token-as-app-token",
        "short-api-token",
        "api-url",
        "port",
    ],
)
def test_a_malformed_setting_is_one_line_and_never_echoes_the_secret(
    env: dict[str, str], args: tuple[str, ...], expected: str
) -> None:
    code, lines = serve(env, *args)
    assert code == 1
    assert lines == [expected]
    assert not any("secret-part" in line for line in lines)


def test_good_slack_settings_then_need_a_migrated_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing.db'}"
    code, lines = serve({**GOOD, "MESHBOT_DATABASE_URL": url, "MESHBOT_API_TOKEN": "a" * 32})
    assert code == 1
    assert lines[-1].startswith("error: no database at sqlite:///") and "meshbot migrate" in lines[-1]
