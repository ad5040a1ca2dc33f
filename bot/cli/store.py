"""``meshbot migrate`` and ``meshbot audit [FILTERS...] | verify [--head] | head | prune``."""

from __future__ import annotations

import csv
import getpass
import io
import json
import shlex
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated, Any, NoReturn

import typer
from sqlalchemy.exc import SQLAlchemyError
from typer.core import TyperGroup

from bot.settings_cli import load_settings
from core.settings import Settings
from core.store import (
    Actor,
    AuditEvent,
    AuditKey,
    FilterError,
    Outcome,
    Source,
    Store,
    StoreError,
    event_to_dict,
    open_store,
    parse_filters,
    prune_events,
    query_events,
    record_event,
    verify_chain,
)
from core.store.audit import EVENT_FIELDS
from core.store.chain import (
    AUDIT_KEY_SETTING,
    ChainHead,
    ChainReport,
    canonical_time,
    exported_head_problem,
    parse_head,
    read_head,
)
from core.store.db import redacted
from core.store.filters import FILTER_HELP
from core.store.migrate import upgrade
from core.store.timespec import DURATION_FORMS, parse_duration

USAGE_ERROR = 2


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


class _QueryByDefault(TyperGroup):
    """``meshbot audit service=x`` means ``meshbot audit query service=x``; verify/head/prune stay."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["query", *args]
        return super().parse_args(ctx, args)


_FILTERS_HELP = "Filters, key=value: " + "; ".join(f"{k}: {v}" for k, v in FILTER_HELP.items())

audit_app = typer.Typer(
    cls=_QueryByDefault,
    add_completion=False,
    help="Query the audit log (the default: meshbot audit [FILTERS...]), verify it, prune it.",
)


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def _one_line_errors(settings: Settings) -> Iterator[None]:
    """Store failures as one line on stderr and an exit code, never a traceback."""
    try:
        yield
    except FilterError as error:
        _fail(str(error), USAGE_ERROR)
    except StoreError as error:
        _fail(str(error))
    except SQLAlchemyError as error:
        orig = getattr(error, "orig", None) or error
        reason = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        _fail(f"database error on {redacted(settings.database_url)}: {reason}")


def _cli_actor() -> Actor:
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return Actor.cli(login)


def _record(store: Store, command: Sequence[str], verb: str, outcome: Outcome, message: str) -> None:
    with store.write() as session:
        record_event(
            session=session,
            actor=_cli_actor(),
            source=Source.CLI,
            command=shlex.join(["meshbot", *command]),
            verb=verb,
            outcome=outcome,
            message=message,
        )


def migrate() -> None:
    """Create or upgrade the database schema to the latest revision."""
    settings = load_settings()
    with _one_line_errors(settings):
        store = Store.from_url(settings.database_url, audit_key=AuditKey.from_setting(settings.audit_key))
        try:
            store.check_connection()
            result = upgrade(store.engine)
            summary = (
                f"upgraded schema from {result.before or 'empty'} to {result.after}"
                if result.changed
                else f"schema already at {result.after}"
            )
            _record(store, ["migrate"], "migrate", Outcome.OK, summary)
        finally:
            store.dispose()
    typer.echo(f"{store.display_url}: {summary}")


@contextmanager
def _opened(settings: Settings) -> Iterator[Store]:
    store = open_store(
        settings.database_url,
        auto_migrate=settings.auto_migrate,
        audit_key=AuditKey.from_setting(settings.audit_key),
    )
    try:
        yield store
    finally:
        store.dispose()


@audit_app.command(
    "query",
    help=f"List audit events, newest first. {_FILTERS_HELP}.",
    short_help="List audit events, newest first (the default command).",
)
def query(
    filters: Annotated[list[str] | None, typer.Argument(metavar="[FILTERS]...")] = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.TABLE,
) -> None:
    words = list(filters or [])
    command = ["audit", *words, *(["--format", output.value] if output != "table" else [])]
    settings = load_settings()
    with _one_line_errors(settings), _opened(settings) as store:
        try:
            parsed = parse_filters(words)
            with store.read() as session:
                page = query_events(session=session, query=parsed)
        except FilterError as error:
            _record(store, command, "audit", Outcome.REFUSED, str(error))
            raise
        _record(store, command, "audit", Outcome.OK, f"{len(page.events)} events listed")
    typer.echo(_render(page.events, output), nl=False)
    if page.next_before is not None:
        more = shlex.join(["meshbot", "audit", *_without_before(words), f"before={page.next_before}"])
        typer.echo(f"more: {more}", err=output != OutputFormat.TABLE)


def _without_before(words: list[str]) -> list[str]:
    return [word for word in words if not word.lower().startswith("before=")]


_TABLE_COLUMNS = ("id", "time", "actor", "source", "verb", "target", "outcome", "experiment")


def _table_row(event: AuditEvent) -> list[str]:
    target = "/".join(part or "-" for part in (event.cluster, event.namespace, event.service))
    return [
        str(event.id),
        canonical_time(event.occurred_at)[:19] + "Z",
        event.actor_name or event.actor_user_id,
        event.source,
        event.verb,
        target,
        event.outcome,
        event.experiment_id or "-",
    ]


def _render(events: list[AuditEvent], output: OutputFormat) -> str:
    if output == OutputFormat.JSON:
        return json.dumps([event_to_dict(event) for event in events], indent=2) + "\n"
    if output == OutputFormat.CSV:
        buffer = io.StringIO()
        rows: list[dict[str, Any]] = [event_to_dict(event) for event in events]
        writer = csv.DictWriter(buffer, fieldnames=EVENT_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    if not events:
        return "no audit events match\n"
    rows_text = [_table_row(event) for event in events]
    widths = [max(len(h), *(len(r[i]) for r in rows_text)) for i, h in enumerate(_TABLE_COLUMNS)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(_TABLE_COLUMNS, widths, strict=True))]
    for event, row in zip(events, rows_text, strict=True):
        cells = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        detail = event.command if not event.message else f"{event.command}  → {event.message}"
        lines.append(f"{cells}  {detail}")
    return "\n".join(lines) + "\n"


@audit_app.command("verify")
def verify(
    head: Annotated[
        str | None,
        typer.Option(
            "--head",
            metavar="ID:HASH",
            help="A head exported earlier by `meshbot audit head`: fail unless the chain still holds it.",
        ),
    ] = None,
) -> None:
    """Walk the hash chain; exit 1 naming the first broken row, or confirm it is intact."""
    command = ["audit", "verify", *(["--head", head] if head is not None else [])]
    exported = parse_head(head) if head is not None else None
    if head is not None and exported is None:
        _fail(f"cannot read --head {head!r}: expected ID:HASH as `meshbot audit head` prints it", USAGE_ERROR)
    settings = load_settings()
    with _one_line_errors(settings), _opened(settings) as store:
        with store.read(snapshot=True) as session:
            report = verify_chain(session=session)
            problem = None
            if report.broken is None and exported is not None:
                problem = exported_head_problem(session, report, exported)
        if report.broken is not None:
            message = f"audit chain broken at {report.broken}"
        elif problem is not None:
            message = f"audit chain does not hold the exported head {exported}: {problem}"
        else:
            message = _intact(report, exported)
        outcome = Outcome.OK if report.broken is None and problem is None else Outcome.ERROR
        _record(store, command, "audit verify", outcome, message)
    if outcome != Outcome.OK:
        _fail(message)
    typer.echo(message)
    caveat = _unkeyed_caveat(report, keyed=store.audit_key is not None)
    if caveat:
        typer.echo(caveat)


def _intact(report: ChainReport, exported: ChainHead | None) -> str:
    span = f" (ids {report.first_id}..{report.last_id})" if report.rows else ""
    rows = "1 row" if report.rows == 1 else f"{report.rows} rows"
    message = f"audit chain intact: {rows}{span}"
    if report.keyed_from is not None:
        message += f", keyed from row {report.keyed_from} (key fingerprint {report.key_fingerprint})"
    if exported is not None:
        message += f"; holds the exported head {exported.last_id}"
    return message


def _unkeyed_caveat(report: ChainReport, *, keyed: bool) -> str | None:
    """Said every time: a plain SHA-256 chain can be recomputed by whoever can write the database."""
    if not keyed:
        return (
            f"unkeyed: {AUDIT_KEY_SETTING} is not set, so the chain shows accidental damage only, "
            "not tampering by someone who can write the database"
        )
    span = report.unkeyed_span
    if span is None:
        return None
    return (
        f"unkeyed: rows {span[0]}..{span[1]} were written before {AUDIT_KEY_SETTING} was set; the first "
        "keyed row seals them as they were then, not before"
    )


@audit_app.command("head")
def head() -> None:
    """Print the chain's newest row as ID:HASH (and the key's fingerprint): keep it outside the
    database, and `meshbot audit verify --head` later proves nothing up to it was cut or rewritten."""
    settings = load_settings()
    with _one_line_errors(settings), _opened(settings) as store:
        with store.read() as session:
            current = read_head(session)
        _record(store, ["audit", "head"], "audit head", Outcome.OK, f"head exported: {current}")
    typer.echo(str(current))


def _ask_before_pruning(older_than: str) -> None:
    # `--older-than 1s` deletes nearly the whole log: a typo must not be enough to lose it.
    question = f"Delete every audit event older than {older_than}? This cannot be undone."
    if not sys.stdin.isatty():
        _fail(
            f"audit prune deletes every audit event older than {older_than} and cannot be undone: "
            "add --yes to do it; nothing was deleted",
            USAGE_ERROR,
        )
    if not typer.confirm(question, default=False):
        _fail("nothing was deleted", USAGE_ERROR)


@audit_app.command("prune")
def prune(
    older_than: Annotated[
        str, typer.Option("--older-than", help=f"Age of events to delete: {DURATION_FORMS}.")
    ],
    yes: Annotated[
        bool, typer.Option("--yes", help="Delete without asking (required when not at a terminal).")
    ] = False,
) -> None:
    """Delete audit events older than the given age; the chain stays verifiable."""
    command = ["audit", "prune", "--older-than", older_than]
    settings = load_settings()
    with _one_line_errors(settings), _opened(settings) as store:
        try:
            age = parse_duration(older_than)
        except FilterError:
            age = None  # too long: refused, and audited, like any age it cannot use
        if age is None or age.total_seconds() <= 0:
            message = f"cannot read --older-than {older_than}: expected {DURATION_FORMS}"
            _record(store, command, "audit prune", Outcome.REFUSED, message)
            raise FilterError(message)
        if not yes:
            _ask_before_pruning(older_than)
        with store.write() as session:
            result = prune_events(
                session=session,
                older_than=age,
                actor=_cli_actor(),
                source=Source.CLI,
                command=shlex.join(["meshbot", *command]),
            )
    typer.echo(result.event.message)
