"""`uninstall [revision=<rev>] [--dry-run]`: remove Istio's control plane (istioctl uninstall)."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import Refused
from handlers import parse
from handlers.context import Context
from handlers.errors import UsageError
from handlers.install import ISTIO_TARGET, installer, result_reply
from handlers.reply import Reply
from handlers.verb import Access, Everywhere
from mesh.install import InstallOptionError, NotInstalled, validate_revision

VERB = "uninstall"
HELP = "remove Istio's control plane (all revisions unless one is named)"
USAGE = "uninstall [revision=<rev>] [--dry-run]"


def rules(command: UninstallCommand) -> Access:
    return Access(role="admin", where=Everywhere("it removes the control plane every namespace uses"))


@dataclass(frozen=True)
class UninstallCommand:
    revision: str | None
    dry_run: bool


def parse_args(args: list[str]) -> UninstallCommand:
    try:
        opts, rest = parse.options(args, {"revision"})
        flags, rest = parse.flags(rest, {"--dry-run"})
        if rest:
            raise parse.ParseError(f"unexpected {' '.join(rest)}")
        revision = validate_revision(opts.get("revision"))
    except (parse.ParseError, InstallOptionError) as exc:
        raise UsageError(str(exc), USAGE) from None
    return UninstallCommand(revision, "--dry-run" in flags)


def handle(command: UninstallCommand, ctx: Context) -> Reply:
    try:
        result = installer(ctx).uninstall(
            command.revision, dry_run=command.dry_run, on_progress=ctx.on_progress
        )
    except NotInstalled as exc:
        raise Refused(str(exc)) from None
    if result.succeeded:
        return Reply(f"Istio uninstalled (`{result.command}`).", target=ISTIO_TARGET)
    return result_reply(result, ctx, "Istio uninstalled")
