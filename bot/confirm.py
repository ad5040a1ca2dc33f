"""Which commands ask "are you sure?" before acting, and the questions waiting for an answer.

``needs_confirmation`` is the pipeline's confirm step for Slack and the HTTP API; the CLI, a local
administrator, passes none. A pending question lives server side, in the store (shared by every
replica), under an unguessable token that the buttons carry: anyone in a channel can read and
replay a button's value, so the value names the question, never the command it stands for.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.authz import required, rules_of
from core.clock import utcnow
from core.store import (
    Actor,
    PendingConfirmation,
    Source,
    Store,
    count_confirmations,
    get_confirmation,
    hold_confirmation,
    put_back_confirmation,
    set_confirmation_message,
    take_confirmation,
    take_expired_confirmations,
)
from handlers.context import Context
from handlers.verb import Access, Everywhere


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
    typed = [w.lower() for w in ctx.words]
    reasons = [f"`{p}` always asks first" for p in rules.commands if _matches(p, typed)]
    access = rules_of(verb, command)
    if access.starts is not None:
        starts = access.starts
        if starts.kind == "abort" and starts.percentage >= rules.abort_percentage:
            threshold = rules.abort_percentage
            reasons.append(
                f"it aborts {starts.percentage:g}% of requests (the policy asks from {threshold:g}%)"
            )
        assert access.where is not None  # Access refuses a changing command without one
        namespace = access.where.namespace(ctx)
        if namespace in ctx.policy.production_namespaces:
            reasons.append(f"{namespace} is a production namespace")
    elif not access.read_only and not isinstance(access.where, Everywhere):
        # Sidecars, mTLS and exposures in kube-system or istio-system change what every
        # namespace depends on: even an admin is asked first. (Faults there are refused outright.)
        namespace = required(access, ctx).namespace
        if namespace is not None and ctx.policy.is_protected(namespace):
            reasons.append(f"namespace {namespace} is protected by policy")
    two_person = _needs_second_person(access, ctx)
    if not reasons and not two_person:
        return None
    if two_person:
        reasons.append("a second person must approve changes in this namespace")
    shown = " ".join(typed) or ctx.command_text
    return Question(f"Run `{shown}`? Asking because {'; '.join(reasons)}.", two_person=two_person)


def _needs_second_person(access: Access, ctx: Context) -> bool:
    if not ctx.policy.two_person_namespaces or access.read_only or access.exempt_from_two_person:
        return False
    # Every namespace includes the two-person ones.
    if isinstance(access.where, Everywhere):
        return True
    return required(access, ctx).namespace in ctx.policy.two_person_namespaces


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
    # Where the question was shown, so the answer (or the sweeper) can replace it: the slash
    # command's response_url, or the channel message a two-person question was posted as.
    response_url: str | None = None
    message_ts: str | None = None
    asked_at: datetime | None = None


class PendingConfirmations:
    """Questions waiting for a button, each answered at most once, forgotten after ``ttl``.

    Kept in the store, so every replica behind the Service sees the same questions: a press is
    answered wherever Slack delivers it, and a restart keeps them. The methods block on the
    database; async callers run them in a worker thread.
    """

    def __init__(self, store: Store, ttl: timedelta, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.ttl = ttl
        self._clock = clock

    def hold(
        self,
        *,
        text: str,
        actor: Actor,
        source: Source,
        channel: str | None,
        question: Question,
        response_url: str | None = None,
    ) -> Pending:
        now = self._clock()
        pending = Pending(
            token=secrets.token_urlsafe(16),
            text=text,
            actor=actor,
            source=source,
            channel=channel,
            question=question,
            expires_at=now + self.ttl,
            response_url=response_url,
            asked_at=now,
        )
        with self.store.write() as session:
            hold_confirmation(
                session=session,
                token=pending.token,
                command=text,
                actor=actor,
                source=source,
                channel=channel,
                question=asdict(question),
                expires_at=pending.expires_at,
                response_url=response_url,
                now=now,
            )
        return pending

    def shown_as(self, pending: Pending, message_ts: str) -> None:
        """Record the channel message showing the question, for whoever withdraws it later."""
        pending.message_ts = message_ts
        with self.store.write() as session:
            set_confirmation_message(session=session, token=pending.token, message_ts=message_ts)

    def take(self, token: str) -> Pending | None:
        """The pending question, removed so no second press can run it; None when unknown or
        already answered, on any replica. An expired one is returned too, for its taker to
        withdraw (see expired)."""
        with self.store.write() as session:
            held = take_confirmation(session=session, token=token)
        return None if held is None else _pending(held)

    def expired(self, pending: Pending) -> bool:
        return pending.expires_at <= self._clock()

    def put_back(self, pending: Pending) -> None:
        """Keep a question open after an answer that did not count (say, an unauthorized approver)."""
        with self.store.write() as session:
            put_back_confirmation(session=session, confirmation=self._row(pending))

    def peek(self, token: str) -> Pending | None:
        with self.store.read() as session:
            held = get_confirmation(session=session, token=token)
        return None if held is None else _pending(held)

    def expire(self) -> list[Pending]:
        """Remove and return the questions nobody answered in time. Several replicas may sweep at
        once: each question goes to exactly one of them, which withdraws it."""
        with self.store.write() as session:
            gone = take_expired_confirmations(session=session, now=self._clock())
        return [_pending(held) for held in gone]

    def __len__(self) -> int:
        with self.store.read() as session:
            return count_confirmations(session=session)

    def _row(self, pending: Pending) -> PendingConfirmation:
        return PendingConfirmation(
            token=pending.token,
            command=pending.text,
            actor_team=pending.actor.team_id,
            actor_user=pending.actor.user_id,
            actor_name=pending.actor.display_name,
            source=Source(pending.source).value,
            channel=pending.channel,
            question=asdict(pending.question),
            response_url=pending.response_url,
            message_ts=pending.message_ts,
            expires_at=pending.expires_at,
            created_at=pending.asked_at or self._clock(),
        )


def _pending(held: PendingConfirmation) -> Pending:
    return Pending(
        token=held.token,
        text=held.command,
        actor=Actor(user_id=held.actor_user, team_id=held.actor_team, display_name=held.actor_name),
        source=Source(held.source),
        channel=held.channel,
        question=Question(str(held.question["text"]), two_person=bool(held.question.get("two_person"))),
        expires_at=held.expires_at,
        response_url=held.response_url,
        message_ts=held.message_ts,
        asked_at=held.created_at,
    )
