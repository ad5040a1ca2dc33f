"""`audit [filters]`: who did what, from the audit log (the store's one query, rendered for chat)."""

from __future__ import annotations

from dataclasses import dataclass

from core.store import AuditQuery, FilterError, event_to_dict, parse_filters, query_events
from core.store.filters import FILTER_KEYS
from handlers.context import Context
from handlers.errors import UsageError
from handlers.reply import Reply
from handlers.verb import READS, Access

VERB = "audit"
HELP = "query the audit log, e.g. `audit service=web-svc since=24h`"
USAGE = f"audit [{'|'.join(FILTER_KEYS)}=<value> ...]"


def rules(command: AuditCommand) -> Access:
    return READS


@dataclass(frozen=True)
class AuditCommand:
    words: tuple[str, ...]


def parse_args(args: list[str]) -> AuditCommand:
    # Filters are parsed when the command runs: relative times (`since=24h`) need its clock.
    return AuditCommand(tuple(args))


def handle(command: AuditCommand, ctx: Context) -> Reply:
    try:
        query: AuditQuery = parse_filters(list(command.words), now=ctx.now())
    except FilterError as exc:
        raise UsageError(str(exc), USAGE) from None
    with ctx.store.read() as session:
        page = query_events(session=session, query=query)
        lines = []
        for event in page.events:
            who = event.actor_name or event.actor_user_id
            target = "/".join(p for p in (event.namespace, event.service) if p) or "-"
            exp = f" [{event.experiment_id}]" if event.experiment_id else ""
            lines.append(
                f"#{event.id} {event.occurred_at:%Y-%m-%d %H:%M:%S}Z {who} `{event.command}` "
                f"→ {event.outcome} ({target}){exp}"
            )
        more = page.next_before
        data = {"events": [event_to_dict(e) for e in page.events], "next_before": more}
    if not lines:
        return Reply("No audit events match.", data=data)
    text = f"Audit log, newest first ({len(lines)} shown):\n" + "\n".join(lines)
    if more is not None:
        text += f"\nMore: add `before={more}`."
    return Reply(text, data=data)
