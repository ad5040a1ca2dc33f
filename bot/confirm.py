"""Which commands ask "are you sure?" before acting, and the questions waiting for an answer.

``needs_confirmation`` is the pipeline's confirm step for Slack and the HTTP API; the CLI, a local
administrator, passes none. A pending question lives server side, in memory, under an unguessable
token that the buttons carry: anyone in a channel can read and replay a button's value, so the
value names the question, never the command it stands for.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.authz import requirement, target_namespace
from bot.clock import utcnow
from bot.store import Actor, Source
from handlers import fault
from handlers.context import Context
from handlers.parse import ParseError, words


@dataclass(frozen=True)
class Question:
    """What to ask before running a command; ``two_person``: a second person must approve it."""

    text: str
    two_person: bool = False


def _matches(pattern: str, command_words: list[str]) -> bool:
    wanted = pattern.lower().split()
    return bool(wanted) and command_words[:1] == wanted[:1] and all(w in command_words for w in wanted[1:])


def needs_confirmation(verb: str, command: Any, ctx: Context) -> Question | None:
    """The question to ask before ``command`` runs, or None to run it at once."""
    rules = ctx.policy.confirm
    try:
        typed = [w.lower() for w in words(ctx.command_text)]
    except ParseError:
        return None
    if typed[:1] == ["/mesh"]:
        typed = typed[1:]
    reasons = [f"`{p}` always asks first" for p in rules.commands if _matches(p, typed)]
    # A scheduled fault is judged as the fault it will inject.
    inject = command if isinstance(command, fault.InjectCommand) else getattr(command, "inject", None)
    if isinstance(inject, fault.InjectCommand):
        namespace = target_namespace("fault", inject, ctx)
        if inject.kind == "abort" and inject.percentage >= rules.abort_percentage:
            threshold = rules.abort_percentage
            reasons.append(
                f"it aborts {inject.percentage:g}% of requests (the policy asks from {threshold:g}%)"
            )
        if namespace in ctx.policy.production_namespaces:
            reasons.append(f"{namespace} is a production namespace")
    two_person = _needs_second_person(verb, command, ctx)
    if not reasons and not two_person:
        return None
    if two_person:
        reasons.append("a second person must approve changes in this namespace")
    return Question(f"Run `{' '.join(typed)}`? Asking because {'; '.join(reasons)}.", two_person=two_person)


def _needs_second_person(verb: str, command: Any, ctx: Context) -> bool:
    if not ctx.policy.two_person_namespaces:
        return False
    needed = requirement(verb, command, ctx)
    if needed.role == "viewer":
        return False
    # Stopping a fault makes things safer; one person must always be able to do it at once.
    if isinstance(command, fault.ClearCommand) and not command.everything:
        return False
    namespace = needed.namespace or target_namespace(verb, command, ctx)
    return namespace in ctx.policy.two_person_namespaces


@dataclass
class Pending:
    """A command held for confirmation: what, by whom, where; and where the question was shown."""

    token: str
    text: str
    actor: Actor
    source: Source
    channel: str | None
    question: Question
    expires_at: datetime
    # Set by the transport once the question is shown, so the answer can replace it.
    response_url: str | None = None
    message_ts: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class PendingConfirmations:
    """Questions waiting for a button, each answered at most once, forgotten after ``ttl``.

    In memory: a restart drops open questions, and pressing an old button then says it expired.
    """

    def __init__(self, ttl: timedelta, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.ttl = ttl
        self._clock = clock
        self._pending: dict[str, Pending] = {}
        self._lock = threading.Lock()

    def hold(
        self, *, text: str, actor: Actor, source: Source, channel: str | None, question: Question
    ) -> Pending:
        pending = Pending(
            token=secrets.token_urlsafe(16),
            text=text,
            actor=actor,
            source=source,
            channel=channel,
            question=question,
            expires_at=self._clock() + self.ttl,
        )
        with self._lock:
            self._pending[pending.token] = pending
        return pending

    def take(self, token: str) -> Pending | None:
        """The pending question, removed so no second press can run it; None when unknown or
        already answered. An expired one is returned too, for its owner to withdraw (see expired)."""
        with self._lock:
            return self._pending.pop(token, None)

    def expired(self, pending: Pending) -> bool:
        return pending.expires_at <= self._clock()

    def put_back(self, pending: Pending) -> None:
        """Keep a question open after an answer that did not count (say, an unauthorized approver)."""
        with self._lock:
            self._pending[pending.token] = pending

    def peek(self, token: str) -> Pending | None:
        with self._lock:
            return self._pending.get(token)

    def expire(self) -> list[Pending]:
        """Remove and return the questions nobody answered in time."""
        now = self._clock()
        with self._lock:
            gone = [p for p in self._pending.values() if p.expires_at <= now]
            for pending in gone:
                del self._pending[pending.token]
        return gone

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)
