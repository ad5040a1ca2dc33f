"""`install` / `uninstall`: Istio's control plane, like `istioctl install --set profile=demo -y`."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import Refused
from core.values import Target
from handlers import parse
from handlers.context import Context
from handlers.errors import UsageError
from handlers.reply import Reply
from handlers.verb import Access, Everywhere
from mesh.install import (
    PROFILES,
    AlreadyInstalled,
    Installer,
    InstallOptionError,
    InstallResult,
    control_plane_status,
    validate_profile,
    validate_revision,
)

VERB = "install"
HELP = "install Istio's control plane (istioctl install --set profile=demo -y)"
USAGE = f"install [profile={'|'.join(PROFILES)}] [revision=<rev>] [--dry-run] [--force]"
ISTIO_TARGET = Target(namespace="istio-system")


def rules(command: InstallCommand) -> Access:
    return Access(role="admin", where=Everywhere("it changes the control plane every namespace uses"))


@dataclass(frozen=True)
class InstallCommand:
    profile: str
    revision: str | None
    dry_run: bool
    force: bool


def parse_args(args: list[str]) -> InstallCommand:
    try:
        opts, rest = parse.options(args, {"profile", "revision"})
        flags, rest = parse.flags(rest, {"--dry-run", "--force"})
        if rest:
            raise parse.ParseError(f"unexpected {' '.join(rest)}")
        profile = validate_profile(opts.get("profile", "demo"))
        revision = validate_revision(opts.get("revision"))
    except (parse.ParseError, InstallOptionError) as exc:
        raise UsageError(str(exc), USAGE) from None
    return InstallCommand(profile, revision, "--dry-run" in flags, "--force" in flags)


def installer(ctx: Context) -> Installer:
    chosen = ctx.installer
    if chosen is None:
        raise Refused("no Istio installer is configured (MESHBOT_INSTALLER=istioctl|job)")
    return chosen


def components_text(ctx: Context) -> str:
    plane = control_plane_status(ctx.kube)
    if not plane.components:
        return "No Istio components found in istio-system."
    lines = [
        f"{'✔' if c.healthy else '✖'} {c.name} {c.ready_text}" + (f" ({c.version})" if c.version else "")
        for c in plane.components
    ]
    if plane.ingress is not None and plane.ingress.external_addresses:
        lines.append(f"ingress gateway address: {', '.join(plane.ingress.external_addresses)}")
    return "\n".join(lines)


def result_reply(result: InstallResult, ctx: Context, done: str) -> Reply:
    if result.status.value == "planned":
        return Reply(f"Dry run: nothing was changed; {result.runner}", target=ISTIO_TARGET)
    if not result.succeeded:
        detail = f": {result.detail}" if result.detail else ""
        return Reply.error(f"`{result.command}` {result.status.value}{detail}", target=ISTIO_TARGET)
    return Reply(f"{done} (`{result.command}`).\n{components_text(ctx)}", target=ISTIO_TARGET)


def handle(command: InstallCommand, ctx: Context) -> Reply:
    try:
        result = installer(ctx).install(
            command.profile,
            command.revision,
            dry_run=command.dry_run,
            force=command.force,
            on_progress=ctx.on_progress,
        )
    except AlreadyInstalled as exc:
        raise Refused(f"{exc} To do so: `install --force`.") from None
    return result_reply(result, ctx, f"Istio installed with profile {command.profile}")
