"""The one command pipeline behind Slack, the CLI and the HTTP API.

text → words → verb → parse → authorize → confirm → handle → audit → Reply. Every command is
audited exactly once here, whatever its outcome, so no verb can forget to. A command held by the
confirm step has not happened yet: it is audited once it is answered — when it runs (``run`` with
``confirmed_by``) or when it is withdrawn (cancelled, expired: ``withdraw``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from bot.confirm import Question
from core.clock import utcnow
from core.errors import Refused
from core.policy import Policy
from core.store import Actor, Outcome, Source, Store, StoreError, record_event
from handlers import VERBS
from handlers.context import Context
from handlers.errors import UsageError
from handlers.parse import ParseError, words
from handlers.reply import Reply
from mesh.errors import MeshError
from mesh.kube import Kube

log = logging.getLogger(__name__)

# An authorizer returns None to allow, or the denial text (the Slack front plugs in roles).
Authorizer = Callable[[str, Any, "Context"], str | None]


def _allow_all(verb: str, command: Any, ctx: Context) -> str | None:
    return None


# A confirm step returns None to go ahead, or the question to ask before acting (bot.confirm).
Confirmer = Callable[[str, Any, "Context"], Question | None]


@dataclass(frozen=True)
class Unconfirmed(Reply):
    """Not run, not audited: the confirm step wants ``question`` answered first."""

    question: Question = field(default_factory=lambda: Question(""))
    verb: str = ""


@dataclass
class Pipeline:
    store: Store
    kube: Kube
    policy: Policy
    cluster: str = "default"
    authorize: Authorizer = _allow_all
    clock: Callable[[], datetime] = utcnow
    services: dict[str, Any] = field(default_factory=dict)
    # None: never ask (the CLI). Slack and the HTTP API plug in bot.confirm.needs_confirmation.
    confirm: Confirmer | None = None

    def run(
        self,
        text: str,
        *,
        actor: Actor,
        source: Source,
        channel: str | None = None,
        on_progress: Callable[[str], None] | None = None,
        confirmed_by: Actor | None = None,
    ) -> Reply:
        """Run one command. ``confirmed_by``: the confirm step was answered by this person (the
        actor, or a second approver, who must then be authorized for the command too)."""
        ctx = self._context(text, actor=actor, source=source, channel=channel, on_progress=on_progress)
        verb, reply = self._execute(ctx, confirmed_by)
        if isinstance(reply, Unconfirmed):
            return reply
        self._audit(ctx, verb, reply, confirmed_by=confirmed_by)
        return reply

    def withdraw(self, text: str, *, actor: Actor, source: Source, channel: str | None, why: str) -> Reply:
        """Audit a held command that will not run (cancelled, or nobody confirmed it in time)."""
        ctx = self._context(text, actor=actor, source=source, channel=channel, on_progress=None)
        try:
            parts = words(ctx.command_text)
        except ParseError:
            parts = []
        if parts[:1] == ["/mesh"]:
            parts = parts[1:]
        reply = Reply.refused(why)
        self._audit(ctx, parts[0] if parts else None, reply, confirmed_by=None)
        return reply

    def _context(
        self,
        text: str,
        *,
        actor: Actor,
        source: Source,
        channel: str | None,
        on_progress: Callable[[str], None] | None,
    ) -> Context:
        request_id = uuid.uuid4().hex[:12]
        return Context(
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

    def _execute(self, ctx: Context, confirmed_by: Actor | None = None) -> tuple[str | None, Reply]:
        try:
            parts = words(ctx.command_text)
        except ParseError as exc:
            return None, Reply.refused(str(exc), usage_error=True)
        if parts and parts[0] == "/mesh":
            parts = parts[1:]
        if not parts:
            parts = ["help"]
        ctx.words = tuple(parts)
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
        try:
            denial = self.authorize(verb, command, ctx)
            if denial is not None:
                return verb, Reply.denied(denial)
            if confirmed_by is not None and confirmed_by != ctx.actor:
                denial = self.authorize(verb, command, replace(ctx, actor=confirmed_by))
                if denial is not None:
                    return verb, Reply.denied(f"{confirmed_by} may not approve this: {denial}")
            if self.confirm is not None and confirmed_by is None:
                question = self.confirm(verb, command, ctx)
                if question is not None:
                    return verb, Unconfirmed(question.text, ephemeral=True, question=question, verb=verb)
            return verb, module.handle(command, ctx)
        except UsageError as exc:
            return verb, Reply.refused(str(exc), usage_error=True)
        except Refused as exc:
            return verb, Reply.refused(str(exc), target=exc.target)
        except MeshError as exc:
            return verb, Reply.error(f"{verb} failed: {exc}")
        except StoreError as exc:
            return verb, Reply.error(f"{verb} failed: the experiment store: {exc}")

    def _audit(self, ctx: Context, verb: str | None, reply: Reply, *, confirmed_by: Actor | None) -> None:
        message = reply.text.splitlines()[0] if reply.text else ""
        if confirmed_by is not None:
            who = "confirmed" if confirmed_by == ctx.actor else f"approved by {confirmed_by}"
            message = f"[{who}] {message}"
        try:
            with self.store.write() as session:
                record_event(
                    session=session,
                    actor=ctx.actor,
                    source=ctx.source,
                    command=ctx.command_text,
                    verb=verb or "",
                    outcome=Outcome(reply.outcome),
                    message=message[:500],
                    channel=ctx.channel,
                    target=reply.target,
                    experiment_id=reply.experiment_id,
                    request_id=ctx.request_id,
                )
        except StoreError:
            # The command already happened; losing its audit row must be loud, not fatal.
            log.exception("could not record the audit event for request %s", ctx.request_id)
