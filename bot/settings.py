"""Typed settings from the environment (prefix ``MESHBOT_``) — built where needed, never at import."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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
