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
    audit_key: SecretStr | None = Field(
        default=None,
        description=(
            "HMAC key of the audit chain (at least 32 bytes), from the Secret; without it the chain "
            "shows accidental damage only, not tampering by someone who can write the database."
        ),
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

    # ---- experiment lifecycle (bot.lifecycle): expiry, reaper, reminders, schedules, leader
    lifecycle_enabled: bool = Field(
        default=True, description="Run the lifecycle (expiry, reaper, schedules) in this process."
    )
    leader_election: bool = Field(
        default=True,
        description="Elect one scheduler among the replicas with a Lease; off: this process always leads.",
    )
    lease_namespace: str = Field(default="meshbot", description="Namespace of the leader election Lease.")
    lease_name: str = Field(default="meshbot-lifecycle", description="Name of the leader election Lease.")
    lease_duration_seconds: float = Field(
        default=15.0, gt=0, description="A leader not renewing for this long is replaced."
    )
    lease_renew_deadline_seconds: float = Field(
        default=10.0, gt=0, description="A leader that cannot renew for this long steps down."
    )
    lease_retry_seconds: float = Field(default=2.0, gt=0, description="How often to renew or try to acquire.")
    lifecycle_identity: str | None = Field(
        default=None, description="This replica's holder identity in the Lease; default hostname:pid."
    )
    lifecycle_workers: int = Field(default=16, ge=1, description="Threads running expiry and schedule jobs.")
    lifecycle_sync_seconds: float = Field(
        default=1.0, gt=0, description="How often the leader reads new, extended and ended experiments."
    )
    lifecycle_reaper_seconds: float = Field(
        default=15.0, gt=0, description="How often the service sweeps the cluster for expired faults."
    )
    lifecycle_reaper_grace_seconds: float = Field(
        default=5.0,
        ge=0,
        description="The service's reaper leaves faults expired less than this to the expiry jobs.",
    )
    revert_retry_initial_seconds: float = Field(
        default=0.5, gt=0, description="First back-off after a failed revert; doubles each time."
    )
    revert_retry_max_seconds: float = Field(
        default=30.0, gt=0, description="Longest back-off between revert attempts."
    )
    revert_escalate_after: int = Field(
        default=5, ge=1, description="Failed revert attempts before the experiment is marked failed."
    )
    reminder_lead_seconds: float = Field(
        default=120.0, ge=0, description="Remind the thread this long before a fault ends (0: never)."
    )
    nudge_every_seconds: float = Field(
        default=1800.0, ge=0, description="Remind the thread of a long fault this often (0: never)."
    )
    guard_interval: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="Seconds between evaluations of an experiment's guards (MESHBOT_GUARD_INTERVAL).",
    )
    card_tail_seconds: float = Field(
        default=60.0,
        ge=0,
        le=900,
        description="Seconds after an experiment ends before its report card's chart is drawn, so it "
        "shows the recovery (MESHBOT_CARD_TAIL_SECONDS; 0: at once, with no tail).",
    )
    schedule_misfire_grace_seconds: float = Field(
        default=60.0, ge=0, description="A scheduled run later than this is reported as missed, not run."
    )

    # ---- telemetry (mesh.prometheus, mesh.kiali): summary, graph and status read them when set
    prometheus_url: str | None = Field(
        default=None, description="Prometheus base URL, e.g. http://prometheus.istio-system:9090."
    )
    prometheus_token: SecretStr | None = Field(default=None, description="Bearer token for Prometheus.")
    prometheus_username: str | None = Field(default=None, description="Basic auth user for Prometheus.")
    prometheus_password: SecretStr | None = Field(default=None, description="Basic auth password.")
    prometheus_verify_tls: bool = Field(default=True, description="Check Prometheus's TLS certificate.")
    # Under Slack's 3 s for the answer, with room for the rest of the reply: a hung Prometheus
    # (or Kiali) must not hold a slash command past the window people expect an answer in.
    prometheus_timeout_seconds: float = Field(
        default=2.0, gt=0, le=60, description="Give up on one Prometheus request after this."
    )
    kiali_url: str | None = Field(default=None, description="Kiali base URL with its web root, e.g. …/kiali.")
    kiali_token: SecretStr | None = Field(default=None, description="Bearer token for Kiali.")
