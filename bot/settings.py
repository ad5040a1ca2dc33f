"""Typed settings from the environment (prefix ``MESHBOT_``) — built where needed, never at import."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
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
