"""Typed settings from the environment (prefix ``MESHBOT_``) — built where needed, never at import."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MESHBOT_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///meshbot.db",
        description="SQLAlchemy URL of the experiment store and audit log.",
    )
    auto_migrate: bool = Field(
        default=False,
        description="Upgrade the database schema on start-up instead of refusing to start.",
    )
    kube_context: str | None = Field(
        default=None, description="kubeconfig context to use; the current context when unset."
    )
    policy_file: Path | None = Field(default=None, description="YAML policy file.")
    installer: Literal["istioctl", "job"] = Field(
        default="istioctl",
        description="How `install` runs istioctl: a local binary, or a Job in the cluster.",
    )
    istioctl_path: str = Field(default="istioctl", description="The istioctl binary (PATH lookup).")
    install_timeout_seconds: float = Field(
        default=600.0, gt=0, description="Give up on an install after this."
    )
    installer_namespace: str = Field(
        default="meshbot", description="Namespace of the installer Job and its ServiceAccount."
    )
    installer_service_account: str = Field(default="meshbot-installer")
    istio_version: str = Field(default="1.24.2", description="Tag of the istio/istioctl image the Job runs.")

    # ---- the Slack front and the HTTP service (`meshbot serve`); checked by bot.slack.config at start-up
    # Slack's own names, without MESHBOT_, as its docs and Bolt read them; the field name works in code.
    slack_bot_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_BOT_TOKEN", "slack_bot_token"),
        description="Bot User OAuth Token (xoxb-…).",
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "slack_signing_secret"),
        description="Signing Secret from the app's Basic Information page (HTTP mode).",
    )
    slack_app_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_APP_TOKEN", "slack_app_token"),
        description="App-level token (xapp-…) with connections:write, for Socket Mode.",
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/", description="Slack Web API base URL (tests point it at a fake)."
    )
    api_token: SecretStr | None = Field(
        default=None, description="Bearer token of the /api/v1 HTTP API; the API answers 401 without it."
    )
    host: str = Field(default="127.0.0.1", description="Address `meshbot serve` listens on.")
    port: int = Field(default=3000, ge=1, le=65535, description="Port `meshbot serve` listens on.")
    usergroup_cache_seconds: float = Field(
        default=300.0, ge=0, description="How long user group membership read from Slack is trusted."
    )
