"""The policy file (`MESHBOT_POLICY_FILE`, YAML): what meshbot may do, and to what.

Guard rails live here rather than in code so a platform team can tighten them without a release:
protected namespaces, caps on fault duration and percentage, concurrency limits, dashboards.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.durations import DurationError, duration
from core.guards import GuardError, parse_guard


class PolicyError(Exception):
    """The policy file cannot be read or is malformed; the message names the file and the field."""


def _duration_field(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    try:
        return duration(str(value))
    except DurationError as exc:
        raise ValueError(str(exc)) from None


class FaultLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_duration: timedelta = Field(
        default=timedelta(minutes=10), description="How long a fault runs without `for <d>` (e.g. 10m)."
    )
    max_duration: timedelta = Field(default=timedelta(hours=1), description="The longest a fault may run.")
    max_delay: timedelta = Field(default=timedelta(minutes=5), description="The longest fixed delay.")
    max_percentage: float = Field(default=100.0, gt=0, le=100, description="The largest share of requests.")
    max_concurrent_per_namespace: int = Field(
        default=5, ge=1, description="Active and pending faults per namespace at once."
    )

    _parse_durations = field_validator("default_duration", "max_duration", "max_delay", mode="before")(
        _duration_field
    )


class ClusterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kubeconfig: Path | None = None
    context: str | None = None


class RoleBinding(BaseModel):
    """Who holds a role: Slack user ids (``U…``, ``T…/U…`` for one workspace, ``*`` for everyone)
    and user groups (``S…``), optionally only in some channels and, for operators, namespaces."""

    model_config = ConfigDict(extra="forbid")

    users: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    # None: every namespace (channel). An empty list would grant nothing, so it is refused.
    namespaces: list[str] | None = Field(default=None, min_length=1)
    channels: list[str] | None = Field(default=None, min_length=1)


RoleName = Literal["viewer", "operator", "admin"]


def _read_only_for_everyone() -> dict[RoleName, list[RoleBinding]]:
    return {"viewer": [RoleBinding(users=["*"])]}


def _bindings_field(value: Any) -> Any:
    # One binding per role reads best; a list allows, say, two teams operating two namespaces.
    if isinstance(value, dict):
        return {role: [b] if isinstance(b, dict) else b for role, b in value.items()}
    return value


class ConfirmRules(BaseModel):
    """Which commands ask "are you sure?" with buttons before acting (Slack; the API wants
    ``confirmed: true``); the CLI, a local administrator, is never asked."""

    model_config = ConfigDict(extra="forbid")

    # A command matches when its verb is the first word and the other words all appear in it.
    commands: list[str] = Field(
        default_factory=lambda: ["install", "uninstall", "fault clear all", "mtls strict"]
    )
    abort_percentage: float = Field(default=50.0, gt=0, le=100)
    expires_after: timedelta = timedelta(minutes=10)

    _parse_durations = field_validator("expires_after", mode="before")(_duration_field)


class DigestPolicy(BaseModel):
    """A daily message per channel: experiments of the last day, those still active, what is
    scheduled next (bot.lifecycle.digest)."""

    model_config = ConfigDict(extra="forbid")

    channels: list[str] = Field(min_length=1)
    at: str = "09:00"  # local time of day, HH:MM
    timezone: str = "UTC"
    # A channel with nothing to say gets no message.
    skip_empty: bool = True

    @field_validator("at")
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        # ASCII digits: isdigit() takes `²`, which int() then refuses with a less helpful error.
        clock = re.fullmatch(r"([0-9]{1,2}):([0-9]{2})", value)
        if clock is None or int(clock[1]) >= 24 or int(clock[2]) >= 60:
            raise ValueError(f"{value!r} is not a time of day like 09:00")
        return f"{int(clock[1]):02d}:{int(clock[2]):02d}"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name, e.g. Europe/Berlin)") from None
        return value


class GuardPolicy(BaseModel):
    """Guards every fault in a namespace carries unless the fault names its own, and what to do
    when Prometheus cannot be asked while guarding."""

    model_config = ConfigDict(extra="forbid")

    namespaces: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Namespace → default guards, e.g. {"shop": ["error_rate > 50%"]}, as in `guard=`.',
    )
    on_unavailable: Literal["stop", "continue"] = Field(
        default="stop",
        description="When Prometheus cannot be read: end the experiment (stop) or keep it running.",
    )
    unavailable_after: int = Field(
        default=3, ge=1, le=100, description="Failed evaluations in a row before `on_unavailable` applies."
    )

    @field_validator("namespaces")
    @classmethod
    def _guards_parse(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for namespace, texts in value.items():
            for text in texts:
                try:
                    parse_guard(text)
                except GuardError as exc:
                    raise ValueError(f"{namespace}: {exc}") from None
        return value


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    protected_namespaces: list[str] = Field(
        default_factory=lambda: ["kube-system", "istio-system"],
        description="No faults here; sidecar, mTLS and exposure changes need admin and a confirmation.",
    )
    faults: FaultLimits = Field(default_factory=FaultLimits, description="Caps on every fault.")
    dashboards: dict[str, str] = Field(
        default_factory=dict, description="`/mesh dashboard <name>` links: name → URL."
    )
    default_cluster: str = Field(default="default", description="The cluster used unless a channel is bound.")
    clusters: dict[str, ClusterConfig] = Field(
        default_factory=dict, description="Other clusters by name: kubeconfig and context."
    )
    default_namespace: str | None = Field(
        default=None, description="A channel's namespace until `/mesh use <ns>` binds one."
    )
    # Who may do what from Slack; the default lets everyone look and nobody change anything.
    roles: dict[RoleName, list[RoleBinding]] = Field(default_factory=_read_only_for_everyone)
    confirm: ConfirmRules = Field(default_factory=ConfirmRules)
    # Any fault here asks for confirmation; in two-person namespaces a second person must approve
    # every change.
    production_namespaces: list[str] = Field(default_factory=list)
    two_person_namespaces: list[str] = Field(default_factory=list)
    # Workspaces whose users plain ``U…`` role subjects mean; empty: any workspace.
    slack_teams: list[str] = Field(default_factory=list)
    # Optional daily digest per channel (bot.lifecycle.digest); None: no digest.
    digest: DigestPolicy | None = None
    guards: GuardPolicy = Field(
        default_factory=GuardPolicy, description="Default guards per namespace; Prometheus outages."
    )

    _parse_roles = field_validator("roles", mode="before")(_bindings_field)

    def is_protected(self, namespace: str) -> bool:
        return namespace in self.protected_namespaces


def load_policy(path: Path | None) -> Policy:
    """The policy in `path`, or the built-in defaults when no file is configured."""
    if path is None:
        return Policy()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy file {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise PolicyError(f"policy file {path} must hold a mapping at the top level")
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise PolicyError(f"policy file {path} is invalid: {problems}") from None
