"""`graph [-n <ns>] [window=10m]`: the namespace's service graph as a picture (graphviz lays it out),
edges labelled with rate and error share, faulted edges in red, and the worst edges as text."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import Refused
from core.values import Target
from handlers import parse
from handlers.context import Context
from handlers.errors import UsageError
from handlers.images import edge_label, graph_dot, run_dot
from handlers.reply import Attachment, Reply
from handlers.telemetry_text import edge_data, window
from handlers.verb import READS, Access
from mesh.prometheus import TelemetryUnavailable

VERB = "graph"
HELP = "the service graph from Prometheus as an image, worst edges first"
USAGE = "graph [-n <namespace>] [window=10m]"
WORST_SHOWN = 5


def rules(command: GraphCommand) -> Access:
    return READS


@dataclass(frozen=True)
class GraphCommand:
    namespace: str | None
    window: str = "10m"


def parse_args(args: list[str]) -> GraphCommand:
    try:
        found, rest = parse.options(args, {"window"})
        flag, rest = parse.service_ref(rest)
        if len(rest) == 1 and flag is None:
            flag = parse.ServiceRef("", parse.name(rest[0], what="namespace"))
        elif rest:
            raise parse.ParseError(f"graph takes a namespace and window=, not {' '.join(rest)!r}")
        return GraphCommand(flag.namespace if flag else None, window(found.get("window", "10m")))
    except parse.ParseError as exc:
        raise UsageError(str(exc), USAGE) from None


def handle(command: GraphCommand, ctx: Context) -> Reply:
    namespace = ctx.namespace(command.namespace)
    target = Target(cluster=ctx.cluster, namespace=namespace)
    if ctx.prometheus is None and ctx.kiali is None:
        raise Refused("no Prometheus is configured: set MESHBOT_PROMETHEUS_URL", target=target)
    edges, source, note = None, "prometheus", ""
    if ctx.kiali is not None:
        try:
            edges, source = ctx.kiali.edges(namespace, command.window), "kiali"
        except TelemetryUnavailable as exc:
            note = f"{exc}; " + ("edges built from Prometheus instead." if ctx.prometheus else "")
    if edges is None:
        if ctx.prometheus is None:
            return Reply.error(f"No graph: {note.rstrip('; ')}.", target=target)
        try:
            edges = ctx.prometheus.edges(namespace, command.window)
        except TelemetryUnavailable as exc:
            return Reply.error(f"No graph: {note}{exc}.", target=target)
    data = {
        "window": command.window,
        "namespace": namespace,
        "source": source,
        "edges": [edge_data(e) for e in edges],
    }
    if note:
        data["note"] = note
    if not edges:
        return Reply(
            f"{note}{'Kiali' if source == 'kiali' else 'Prometheus'} has no Istio requests into "
            f"{namespace} in the last {command.window}.",
            target=target,
            data=data,
        )
    title = f"{namespace}, last {command.window}"
    image = Attachment(
        name=f"graph-{namespace}.png",
        content=run_dot(graph_dot(edges, title)),
        title=f"Service graph of {title}",
    )
    worst = [
        f"• {e.source} → {e.destination} ({e.protocol}): {edge_label(e)}"
        + (" ⚡ faulted" if e.fault_share else "")
        for e in edges[:WORST_SHOWN]
    ]
    text = (
        f"*Service graph* of {namespace} over {command.window} (from {source.capitalize()}): "
        f"{len(edges)} edges, worst first\n" + "\n".join(worst) + (f"\n_{note}_" if note else "")
    )
    return Reply(text, target=target, data=data, attachments=(image,))
