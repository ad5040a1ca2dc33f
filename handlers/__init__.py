"""One module per /mesh verb: parse → validate → call mesh/ → record → a transport-free Reply.

VERBS is the registry: each verb, what `help` says of it and which module handles it, at a glance.
A verb's module is imported when the verb first runs, so `help` and every other verb skip what it
needs; the module must repeat its VERB, HELP and USAGE as declared here, and declare ``rules``
(handlers.registry checks both when it is imported, tests/bot/test_registry.py for every verb).
"""

from __future__ import annotations

from handlers.registry import VERBS, Declared, Registered, Registry

VERBS.fill(
    (
        Declared(
            "help",
            "this list; `help <verb>` for one command's form",
            "help [<verb>]",
            "handlers.help",
        ),
        Declared(
            "status",
            "control plane, sidecar coverage, exposed hosts and active faults",
            "status [<namespace>]",
            "handlers.status",
        ),
        Declared(
            "use",
            "bind this channel's default namespace",
            "use <namespace> [cluster=<name>]",
            "handlers.use",
        ),
        Declared(
            "install",
            "install Istio's control plane (istioctl install --set profile=demo -y)",
            "install [profile=demo|default|minimal|ambient|empty] [revision=<rev>] [--dry-run] [--force]",
            "handlers.install",
        ),
        Declared(
            "uninstall",
            "remove Istio's control plane (all revisions unless one is named)",
            "uninstall [revision=<rev>] [--dry-run]",
            "handlers.uninstall",
        ),
        Declared(
            "inject",
            "label a namespace istio-injection=enabled; --restart rolls its workloads to get sidecars",
            "inject <namespace> [--restart]",
            "handlers.inject",
        ),
        Declared(
            "uninject",
            "remove a namespace's istio-injection label; --restart rolls its workloads without sidecars",
            "uninject <namespace> [--restart]",
            "handlers.uninject",
        ),
        Declared(
            "expose",
            "route a host through the ingress gateway to a service (Gateway + VirtualService)",
            "expose <service> host=<fqdn> [port=<port>] [gateway=<name>]",
            "handlers.expose",
        ),
        Declared(
            "unexpose",
            "remove the Gateway and VirtualService meshbot made for a host",
            "unexpose <host> [-n <namespace>]",
            "handlers.unexpose",
        ),
        Declared(
            "fault",
            "inject an HTTP delay or abort that ends by itself; list, extend or clear faults",
            # One form per subcommand, as handlers/fault.py's FORMS lists them.
            "fault delay <duration> <service> [<p>%] [for <duration>] [header=<name>:<value>] "
            '[guard="error_rate(<svc>) > 20%" …] [--dry-run]'
            " | fault abort <http-status|grpc-code> <service> [<p>%] [for <duration>] "
            '[header=<name>:<value>] [guard="error_rate(<svc>) > 20%" …] [--dry-run]'
            " | fault list [<namespace>]"
            " | fault extend <experiment-id> <duration>"
            " | fault clear <experiment-id|service|all>",
            "handlers.fault",
        ),
        Declared(
            "mtls",
            "show the effective mTLS mode, or set a namespace to STRICT or PERMISSIVE",
            "mtls [<namespace>] | mtls strict|permissive <namespace>",
            "handlers.mtls",
        ),
        Declared(
            "dashboard",
            "links to Grafana, Kiali, Jaeger, Prometheus or Zipkin",
            "dashboard [grafana|kiali|jaeger|prometheus|zipkin]",
            "handlers.dashboard",
        ),
        Declared(
            "summary",
            "golden signals from Prometheus: rate, success, latency, faults, per caller",
            "summary [<service>] [-n <namespace>] [window=15m]",
            "handlers.summary",
        ),
        Declared(
            "graph",
            "the service graph from Prometheus as an image, worst edges first",
            "graph [-n <namespace>] [window=10m]",
            "handlers.graph",
        ),
        Declared(
            "audit",
            "query the audit log, e.g. `audit service=web-svc since=24h`",
            "audit [actor|before|channel|cluster|experiment|limit|namespace|outcome|service|since|source|"
            "text|until|verb=<value> ...]",
            "handlers.audit",
        ),
        Declared(
            "schedule",
            "run a fault command later: once at a time, or on a cron expression",
            'schedule "<fault command>" at <time>|every "<cron>" [tz=<zone>] [remind=<lead>]',
            "handlers.schedule",
        ),
        Declared(
            "schedules",
            "list scheduled fault commands and when they run next",
            "schedules [all]",
            "handlers.schedule_list",
        ),
        Declared(
            "unschedule",
            "delete a scheduled fault command",
            "unschedule <schedule-id>",
            "handlers.unschedule",
        ),
        Declared(
            "pause",
            "pause a scheduled fault command",
            "pause <schedule-id>",
            "handlers.pause",
        ),
        Declared(
            "resume",
            "resume a paused scheduled fault command",
            "resume <schedule-id>",
            "handlers.resume",
        ),
        Declared(
            "skip",
            "skip the next run of a schedule (or the run named after @)",
            "skip <schedule-id>[@<run time>]",
            "handlers.skip",
        ),
        Declared(
            "postpone",
            "move the next run of a schedule (or the run named after @) later, by 1 h unless by= says",
            "postpone <schedule-id>[@<run time>] [by=<duration>]",
            "handlers.postpone",
        ),
    )
)

__all__ = ["VERBS", "Declared", "Registered", "Registry"]
