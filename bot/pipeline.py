"""The one command pipeline behind Slack, the CLI and the HTTP API.

text → words → verb → parse → authorize → handle → audit → Reply. Every command is audited
exactly once here, whatever its outcome, so no verb can forget to.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.policy import Policy
from bot.store import Actor, Outcome, Source, Store, StoreError, record_event
from handlers import VERBS
from handlers.context import Context
from handlers.errors import Refused, UsageError
from handlers.parse import ParseError, words
from handlers.reply import Reply
from mesh.errors import MeshError
from mesh.kube import Kube

log = logging.getLogger(__name__)

# An authorizer returns None to allow, or the denial text (the Slack front plugs in roles).
Authorizer = Callable[[str, Any, "Context"], str | None]


def _allow_all(verb: str, command: Any, ctx: Context) -> str | None:
    return None


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Pipeline:
    store: Store
    kube: Kube
    policy: Policy
    cluster: str = "default"
    authorize: Authorizer = _allow_all
    clock: Callable[[], datetime] = _utcnow
    services: dict[str, Any] = field(default_factory=dict)

    def run(
        self,
        text: str,
        *,
        actor: Actor,
        source: Source,
        channel: str | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> Reply:
        request_id = uuid.uuid4().hex[:12]
        ctx = Context(
            actor=actor,
            source=source,
            channel=channel,
            command_text=text.strip(),
            request_id=request_id,
            kube=self.kube,
            store=self.store,
            policy=self.policy,
            cluster=self.cluster,
            clock=self.clock,
            on_progress=on_progress or (lambda _line: None),
            services=self.services,
        )
        verb, reply = self._execute(ctx)
        self._audit(ctx, verb, reply)
        return reply

    def _execute(self, ctx: Context) -> tuple[str | None, Reply]:
        try:
            parts = words(ctx.command_text)
        except ParseError as exc:
            return None, Reply.refused(str(exc), usage_error=True)
        if parts and parts[0] == "/mesh":
            parts = parts[1:]
        if not parts:
            parts = ["help"]
        verb, args = parts[0], parts[1:]
        module = VERBS.get(verb)
        if module is None:
            return verb, Reply.refused(
                f"unknown command {verb!r}. Commands: {', '.join(VERBS)} (try `/mesh help`)",
                usage_error=True,
            )
        try:
            command = module.parse_args(args)
        except UsageError as exc:
            return verb, Reply.refused(str(exc), usage_error=True)
        denial = self.authorize(verb, command, ctx)
        if denial is not None:
            return verb, Reply.denied(denial)
        try:
            return verb, module.handle(command, ctx)
        except UsageError as exc:
            return verb, Reply.refused(str(exc), usage_error=True)
        except Refused as exc:
            return verb, Reply.refused(str(exc))
        except MeshError as exc:
            return verb, Reply.error(f"{verb} failed: {exc}")
        except StoreError as exc:
            return verb, Reply.error(f"{verb} failed: the experiment store: {exc}")

    def _audit(self, ctx: Context, verb: str | None, reply: Reply) -> None:
        try:
            with self.store.write() as session:
                record_event(
                    session=session,
                    actor=ctx.actor,
                    source=ctx.source,
                    command=ctx.command_text,
                    verb=verb or "",
                    outcome=Outcome(reply.outcome),
                    message=reply.text.splitlines()[0][:500] if reply.text else "",
                    channel=ctx.channel,
                    target=reply.target,
                    experiment_id=reply.experiment_id,
                    request_id=ctx.request_id,
                )
        except StoreError:
            # The command already happened; losing its audit row must be loud, not fatal.
            log.exception("could not record the audit event for request %s", ctx.request_id)
