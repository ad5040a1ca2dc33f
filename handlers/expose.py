"""`expose <service> host=<fqdn> [port=80] [gateway=<name>]` / `unexpose <host>`: the write-up's
Gateway + VirtualService, and the URL a person can open."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import Refused
from core.values import Target
from handlers import parse
from handlers.context import Context
from handlers.errors import UsageError
from handlers.reply import Reply
from handlers.verb import Access, Namespace
from mesh.errors import NotFound
from mesh.expose import ExposeOptionError, HostTaken, expose, name_for_gateway

VERB = "expose"
HELP = "route a host through the ingress gateway to a service (Gateway + VirtualService)"
USAGE = "expose <service> host=<fqdn> [port=<port>] [gateway=<name>]"


def rules(command: ExposeCommand) -> Access:
    return Access(role="operator", where=Namespace(command.service.namespace))


@dataclass(frozen=True)
class ExposeCommand:
    service: parse.ServiceRef
    host: str
    port: int | None
    name: str | None


def parse_args(args: list[str]) -> ExposeCommand:
    try:
        namespace_flag, rest = parse.service_ref(args)
        opts, rest = parse.options(rest, {"host", "port", "gateway"})
        if len(rest) != 1:
            raise parse.ParseError("name exactly one service")
        if "host" not in opts:
            raise parse.ParseError("host=<fqdn> is required, e.g. host=emoji-istio.test.net")
        service = parse.service_word(rest[0], namespace_flag)
        host = parse.hostname(opts["host"])
        port = None
        if "port" in opts:
            port = parse.whole_number(opts["port"], what="port", low=1, high=65535)
        name = None
        if "gateway" in opts:
            name = name_for_gateway(parse.name(opts["gateway"], what="gateway name"))
    except parse.ParseError as exc:
        raise UsageError(str(exc), USAGE) from None
    return ExposeCommand(service, host, port, name)


def handle(command: ExposeCommand, ctx: Context) -> Reply:
    namespace = ctx.namespace(command.service.namespace)
    target = Target(cluster=ctx.cluster, namespace=namespace, service=command.service.service)
    try:
        exposure = expose(
            ctx.kube, namespace, command.service.service, command.host, port=command.port, name=command.name
        )
    except (NotFound, HostTaken, ExposeOptionError) as exc:
        raise Refused(str(exc)) from None
    what = (
        f"Created/updated {', '.join(exposure.written)}."
        if exposure.written
        else "Gateway and VirtualService were already in place."
    )
    lines = [
        f"{exposure.host} → {exposure.service}.{exposure.namespace}:{exposure.port} "
        f"through Gateway {exposure.gateway}. {what}"
    ]
    for url in exposure.urls:
        where = f" (point {exposure.host} at {url.address})" if url.address else ""
        lines.append(f"• {url.url} via {url.via}{where}")
    return Reply("\n".join(lines), target=target)
