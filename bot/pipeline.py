"""The one command pipeline behind Slack, the CLI, the HTTP API and the scheduler.

A command is split into words once, then passes a chain of steps, each a small function that
may answer itself or hand the call on (slack-bolt's middleware contract)::

    events → metrics → audit → errors → parse → authorize → confirm → handle

Every command is audited exactly once, counted once and its experiment events published once,
whatever its outcome and whichever transport brought it, so no transport and no verb can
forget to. A command held by the confirm step has not happened yet: it is audited once it is
answered — when it runs (``run`` with ``confirmed_by``) or when it is withdrawn (cancelled,
expired: ``withdraw``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.confirm import Question
from bot.events import EventBus, Published
from core.clock import utcnow
from core.errors import Refused
from core.policy import Policy
from core.store import DATABASE_ERRORS, Actor, Outcome, Source, Store, StoreError, record_event
from handlers import VERBS
from handlers.context import Context
from handlers.errors import UsageError
from handlers.parse import ParseError, did_you_mean, words
from handlers.registry import Registered
from handlers.reply import Reply
from mesh.clusters import Clusters
from mesh.errors import MeshError
from mesh.kube import Kube

# Only named in annotations: a CLI pipeline has no metrics and may never install, read the Lease
# or ask Prometheus, and should not import what they need (`meshbot run help` stays cheap).
if TYPE_CHECKING:
    from bot.metrics import Metrics
    from mesh.install import Installer
    from mesh.kiali import Kiali
    from mesh.lease import Leadership
    from mesh.prometheus import Prometheus

log = logging.getLogger(__name__)

# An authorizer returns None to allow, or the denial text (the Slack front plugs in roles).
Authorizer = Callable[[str, Any, Context], str | None]
# A confirm step returns None to go ahead, or the question to ask before acting (bot.confirm).
Confirmer = Callable[[str, Any, Context], Question | None]
# The installer for a cluster, by name and client (istioctl needs the cluster's kubeconfig).
InstallerFactory = Callable[[str, Kube], "Installer"]


# meshbot's own store errors, and the database being gone (SQLAlchemy's, as the driver raises
# them): either way a command ends as one line, and its audit row is attempted, never a traceback.
STORE_FAILURES: tuple[type[Exception], ...] = (StoreError, *DATABASE_ERRORS)


def _allow_all(verb: str, command: Any, ctx: Context) -> str | None:
    return None


@dataclass(frozen=True)
class Unconfirmed(Reply):
    """Not run, not audited: the confirm step wants ``question`` answered first."""

    question: Question = field(default_factory=lambda: Question(""))
    verb: str = ""


@dataclass
class Call:
    """One command on its way through the steps; ``command`` is set once it is parsed."""

    ctx: Context
    verb: str | None
    args: list[str]
    confirmed_by: Actor | None = None
    handler: Registered | None = None
    command: Any = None


Next = Callable[[Call], Reply]
Step = Callable[["Pipeline", Call, Next], Reply]


@dataclass
class Pipeline:
    store: Store
    kube: Kube  # the default cluster's client
    policy: Policy
    cluster: str = "default"
    authorize: Authorizer = _allow_all
    clock: Callable[[], datetime] = utcnow
    # None: never ask (the CLI). Slack and the HTTP API plug in bot.confirm.needs_confirmation.
    confirm: Confirmer | None = None
    # Every cluster commands may act on; None: the default cluster alone.
    clusters: Clusters | None = None
    installer_for: InstallerFactory | None = None
    # Shared by every copy made with dataclasses.replace, so a subscriber hears every transport.
    events: EventBus = field(default_factory=EventBus)
    metrics: Metrics | None = None
    # Who ends faults on time; a fault is refused while nobody leads (bot.leadership).
    leadership: Callable[[], Leadership] | None = None
    # Telemetry for summary, graph and status; None where no Prometheus is configured.
    prometheus: Prometheus | None = None
    kiali: Kiali | None = None

    def __post_init__(self) -> None:
        if self.clusters is None:
            self.clusters = Clusters.of({self.cluster: self.kube}, default=self.cluster)

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
        return self._chain(Call(ctx, None, [], confirmed_by=confirmed_by), _handle)

    def withdraw(self, text: str, *, actor: Actor, source: Source, channel: str | None, why: str) -> Reply:
        """Audit a held command that will not run (cancelled, or nobody confirmed it in time)."""
        ctx = self._context(text, actor=actor, source=source, channel=channel, on_progress=None)
        try:
            parts = _command_words(ctx.command_text)
        except ParseError:
            parts = []
        reply = Reply.refused(why)
        call = Call(ctx, parts[0] if parts else None, [])
        _audit(self, call, reply)
        _count(self, call, reply)
        return reply

    def _chain(self, call: Call, last: Next) -> Reply:
        def link(step: Step, after: Next) -> Next:
            return lambda c: step(self, c, after)

        handler = last
        for step in reversed(STEPS):
            handler = link(step, handler)
        return handler(call)

    def _context(
        self,
        text: str,
        *,
        actor: Actor,
        source: Source,
        channel: str | None,
        on_progress: Callable[[str], None] | None,
    ) -> Context:
        assert self.clusters is not None
        return Context(
            actor=actor,
            source=source,
            channel=channel,
            command_text=text.strip(),
            request_id=uuid.uuid4().hex[:12],
            kube=self.kube,
            store=self.store,
            policy=self.policy,
            cluster=self.cluster,
            clock=self.clock,
            on_progress=on_progress or (lambda _line: None),
            clusters=self.clusters,
            leadership=self.leadership,
            prometheus=self.prometheus,
            kiali=self.kiali,
        )


def _command_words(text: str) -> list[str]:
    parts = words(text)
    if parts[:1] == ["/mesh"]:
        parts = parts[1:]
    return parts or ["help"]


# ---------------------------------------------------------------------- the steps, outermost first


def _audit(pipeline: Pipeline, call: Call, reply: Reply) -> None:
    ctx = call.ctx
    message = reply.text.splitlines()[0] if reply.text else ""
    if call.confirmed_by is not None and reply.outcome != Outcome.DENIED:
        who = "confirmed" if call.confirmed_by == ctx.actor else f"approved by {call.confirmed_by}"
        message = f"[{who}] {message}"
    try:
        with pipeline.store.write() as session:
            record_event(
                session=session,
                actor=ctx.actor,
                source=ctx.source,
                command=ctx.command_text,
                verb=call.verb or "",
                outcome=Outcome(reply.outcome),
                message=message[:500],
                channel=ctx.channel,
                target=reply.target,
                experiment_id=reply.experiment_id,
                request_id=ctx.request_id,
            )
    except STORE_FAILURES:
        # The command already happened; losing its audit row must be loud, not fatal.
        log.exception("could not record the audit event for request %s", ctx.request_id)


def audit_step(pipeline: Pipeline, call: Call, after: Next) -> Reply:
    reply = after(call)
    if not isinstance(reply, Unconfirmed):
        _audit(pipeline, call, reply)
    return reply


def _count(pipeline: Pipeline, call: Call, reply: Reply) -> None:
    if pipeline.metrics is not None:
        from bot.metrics import verb_label  # loaded with the Metrics themselves

        outcome = "held" if isinstance(reply, Unconfirmed) else str(reply.outcome)
        pipeline.metrics.commands.labels(verb_label(call.verb), outcome, str(call.ctx.source)).inc()


def metrics_step(pipeline: Pipeline, call: Call, after: Next) -> Reply:
    reply = after(call)
    _count(pipeline, call, reply)
    return reply


def events_step(pipeline: Pipeline, call: Call, after: Next) -> Reply:
    reply = after(call)
    for event in reply.events:
        pipeline.events.publish(Published(event, call.ctx.actor, call.ctx.source, call.ctx.channel))
    return reply


def errors_step(pipeline: Pipeline, call: Call, after: Next) -> Reply:
    """The errors every step below may raise, as the one-line replies a person sees."""
    try:
        return after(call)
    except UsageError as exc:
        return Reply.refused(str(exc), usage_error=True)
    except Refused as exc:
        return Reply.refused(str(exc), target=exc.target)
    except MeshError as exc:
        return Reply.error(f"{call.verb} failed: {exc}")
    except STORE_FAILURES as exc:
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        return Reply.error(f"{call.verb} failed: the experiment store: {first}")
    except Exception as exc:
        # A bug must still end as one line and one audit row, never a traceback or an HTTP 500;
        # the traceback goes to the log, under the request id the person can quote.
        log.exception("request %s (%s) failed unexpectedly", call.ctx.request_id, call.verb)
        return Reply.error(
            f"{call.verb or 'the command'} failed unexpectedly ({exc.__class__.__name__}); "
            f"nothing more is known here — quote request {call.ctx.request_id} to whoever runs meshbot"
        )


SHARE_FLAG = "--share"


def parse_step(pipeline: Pipeline, call: Call, after: Next) -> Reply:
    """Split the text once and parse it into the verb's typed command; only that travels on."""
    try:
        parts = _command_words(call.ctx.command_text)
    except ParseError as exc:
        return Reply.refused(str(exc), usage_error=True)
    call.ctx.words = tuple(parts)
    # Verbs in any case: phones capitalise the first word.
    call.verb, call.args = parts[0].lower(), parts[1:]
    handler = VERBS.get(call.verb)
    if handler is None:
        hint = did_you_mean(call.verb, VERBS) or f". Commands: {', '.join(VERBS)}"
        return Reply.refused(f"unknown command {parts[0]!r}{hint} (try `/mesh help`)", usage_error=True)
    call.handler = handler
    # `--share` belongs to no verb: it says where a read-only answer goes, so it is taken here.
    share = SHARE_FLAG in call.args
    call.args = [arg for arg in call.args if arg != SHARE_FLAG]
    call.command = handler.parse_args(call.args)
    read_only = handler.rules(call.command).read_only
    if share and not read_only:
        return Reply.refused(
            f"{SHARE_FLAG} is for answers that only show something; `{call.verb}` changes the cluster "
            f"and always answers where everyone sees it: leave {SHARE_FLAG} out",
            usage_error=True,
        )
    _bind_cluster(pipeline, call.ctx)
    reply = after(call)
    if read_only and not share and not reply.ephemeral:
        # Looking is private unless asked: a `status` should not fill the channel.
        reply = replace(reply, ephemeral=True)
    return reply


def _bind_cluster(pipeline: Pipeline, ctx: Context) -> None:
    """Act on the cluster the channel is bound to (`use <ns> cluster=<name>`), else the default."""
    bound = ctx.binding()
    if bound is not None:
        cluster = bound[0]
        if cluster and cluster != ctx.cluster:
            assert ctx.clusters is not None
            ctx.kube = ctx.clusters.kube(cluster)
            ctx.cluster = cluster
    if pipeline.installer_for is not None:
        ctx.installer = pipeline.installer_for(ctx.cluster, ctx.kube)


def authorize_step(pipeline: Pipeline, call: Call, after: Next) -> Reply:
    ctx, verb = call.ctx, call.verb or ""
    denial = pipeline.authorize(verb, call.command, ctx)
    if denial is not None:
        return Reply.denied(denial)
    approver = call.confirmed_by
    if approver is not None and approver != ctx.actor:
        denial = pipeline.authorize(verb, call.command, replace(ctx, actor=approver))
        if denial is not None:
            return Reply.denied(f"{approver} may not approve this: {denial}")
    return after(call)


def confirm_step(pipeline: Pipeline, call: Call, after: Next) -> Reply:
    if pipeline.confirm is not None and call.confirmed_by is None:
        question = pipeline.confirm(call.verb or "", call.command, call.ctx)
        if question is not None:
            return Unconfirmed(question.text, ephemeral=True, question=question, verb=call.verb or "")
    return after(call)


def _handle(call: Call) -> Reply:
    assert call.handler is not None
    return call.handler.handle(call.command, call.ctx)


# Outermost first. The audit row is written and the command counted before events are
# published: whoever hears of an experiment's end (its Slack thread, which can take a while to
# post) can already find the command that ended it, in the audit log and in /metrics.
STEPS: Sequence[Step] = (
    events_step,
    metrics_step,
    audit_step,
    errors_step,
    parse_step,
    authorize_step,
    confirm_step,
)
