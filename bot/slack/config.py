"""Start-up checks of the Slack settings: every problem as one line saying what to set.

Run by ``meshbot serve`` before anything starts, so a typo'd token stops the service at once
instead of failing the first command. Token values are never shown, only their well-known
prefixes (``xoxb-``, ``xapp-``), which are not secret.
"""

from __future__ import annotations

import re

from pydantic import SecretStr

from core.settings import Settings

_PREFIX = re.compile(r"^(xox[a-z]|xapp)-")
_SIGNING_SECRET = re.compile(r"^[0-9a-f]{32,}$")
MIN_API_TOKEN_LENGTH = 16


def _prefix(secret: SecretStr) -> str:
    match = _PREFIX.match(secret.get_secret_value())
    return f"starts with {match.group(0)}" if match else "does not look like a Slack token"


def slack_problems(settings: Settings, *, socket_mode: bool) -> list[str]:
    problems: list[str] = []
    bot = settings.slack_bot_token
    if bot is None or not bot.get_secret_value():
        problems.append(
            "SLACK_BOT_TOKEN is not set: use the Bot User OAuth Token (xoxb-…) from the app's "
            "OAuth & Permissions page"
        )
    elif not bot.get_secret_value().startswith("xoxb-"):
        problems.append(f"SLACK_BOT_TOKEN must be a bot token starting with xoxb-; this one {_prefix(bot)}")
    if socket_mode:
        app = settings.slack_app_token
        if app is None or not app.get_secret_value():
            problems.append(
                "SLACK_APP_TOKEN is not set: Socket Mode needs an app-level token (xapp-…) with "
                "connections:write, from the app's Basic Information page"
            )
        elif not app.get_secret_value().startswith("xapp-"):
            problems.append(
                f"SLACK_APP_TOKEN must be an app-level token starting with xapp-; this one {_prefix(app)}"
            )
    else:
        secret = settings.slack_signing_secret
        if secret is None or not secret.get_secret_value():
            problems.append(
                "SLACK_SIGNING_SECRET is not set: copy the Signing Secret from the app's Basic "
                "Information page (or run with --socket-mode and SLACK_APP_TOKEN)"
            )
        elif not _SIGNING_SECRET.match(secret.get_secret_value()):
            problems.append(
                "SLACK_SIGNING_SECRET is malformed: Slack's signing secrets are 32 lower-case "
                "hexadecimal characters"
            )
    if not settings.slack_api_url.startswith(("http://", "https://")):
        problems.append(
            "MESHBOT_SLACK_API_URL must be an http(s) URL like https://slack.com/api/, "
            f"not {settings.slack_api_url!r}"
        )
    token = settings.api_token
    if token is not None and len(token.get_secret_value()) < MIN_API_TOKEN_LENGTH:
        problems.append(
            f"MESHBOT_API_TOKEN is too short: use at least {MIN_API_TOKEN_LENGTH} random characters "
            "(e.g. `openssl rand -hex 32`), or unset it to turn the API off"
        )
    return problems
