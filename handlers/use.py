"""`use <namespace> [cluster=<name>]`: bind the channel's default namespace (and cluster)."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import Refused
from core.store import set_binding
from core.values import Target
from handlers import parse
from handlers.context import Context
from handlers.errors import UsageError
from handlers.reply import Reply
from handlers.verb import Access, ChannelBinding, Namespace
from mesh.clusters import UnknownCluster
from mesh.errors import NotFound
from mesh.namespaces import require_namespace

VERB = "use"
HELP = "bind this channel's default namespace"
USAGE = "use <namespace> [cluster=<name>]"


def rules(command: UseCommand) -> Access:
    # Binding decides where the channel's next commands land: an operator of one team must not
    # point another team's channel at their own namespace, so a bound channel's current namespace
    # must be covered too (docs/security.md).
    return Access(role="operator", where=Namespace(command.namespace), also=ChannelBinding())


@dataclass(frozen=True)
class UseCommand:
    namespace: str
    cluster: str | None


def parse_args(args: list[str]) -> UseCommand:
    try:
        opts, rest = parse.options(args, {"cluster"})
        if len(rest) != 1:
            raise parse.ParseError("name exactly one namespace")
        namespace = parse.name(rest[0], what="namespace")
        cluster = parse.name(opts["cluster"], what="cluster") if "cluster" in opts else None
    except parse.ParseError as exc:
        raise UsageError(str(exc), USAGE) from None
    return UseCommand(namespace, cluster)


def handle(command: UseCommand, ctx: Context) -> Reply:
    cluster = command.cluster or ctx.cluster
    try:
        # The namespace is looked for on the cluster it is bound with, not the one in use now.
        kube = ctx.clusters.kube(cluster) if ctx.clusters is not None else ctx.kube
    except UnknownCluster as exc:
        raise Refused(str(exc)) from None
    if not ctx.channel:
        raise Refused("`use` binds a channel's default; this command came without a channel")
    try:
        require_namespace(kube, command.namespace)
    except NotFound as exc:
        raise Refused(str(exc)) from None
    with ctx.store.write() as session:
        set_binding(
            session=session,
            channel=ctx.channel,
            cluster=cluster,
            namespace=command.namespace,
            set_by=ctx.actor,
        )
    return Reply(
        f"This channel now uses namespace {command.namespace} on cluster {cluster} by default.",
        target=Target(cluster=cluster, namespace=command.namespace),
    )
