"""bot.pipeline on its own: the steps' order and contract, and what the pipeline promises every
transport — one audit row per answered command, one count, each experiment event published once
and only after its audit row — whatever the outcome. Authorizers and confirmers are plain
functions passed in; a cluster is the playground where a verb needs one, else a closed port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

import bot.pipeline
from bot.confirm import Question
from bot.events import Published
from bot.metrics import Metrics
from bot.pipeline import (
    STEPS,
    Call,
    Pipeline,
    Unconfirmed,
    audit_step,
    authorize_step,
    confirm_step,
    errors_step,
    events_step,
    metrics_step,
    parse_step,
)
from core.errors import Refused
from core.policy import Policy
from core.store import Actor, AuditEvent, Source, Store, StoreError
from core.values import Outcome, Target
from handlers.context import Context
from handlers.errors import UsageError
from handlers.reply import ExperimentEvent, Reply
from mesh.errors import Unavailable
from mesh.kube import Kube, for_url
from playground.runner import Playground
from tests.support.sockets import closed_port

NS = "emojivoto-istio"
CHANNEL = "C0CHAOS"
ALICE = Actor(user_id="U0ALICE", team_id="T0001", display_name="alice")
BOB = Actor(user_id="U0BOB", team_id="T0001", display_name="bob")


@pytest.fixture
def nowhere() -> Iterator[Kube]:
    kube = for_url(f"http://127.0.0.1:{closed_port()}")
    yield kube
    kube.close()


@pytest.fixture
def cluster(playground: Playground) -> Iterator[Kube]:
    kube = for_url(playground.url)
    yield kube
    kube.close()


def rows(store: Store) -> list[AuditEvent]:
    with store.read() as session:
        found = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
        session.expunge_all()
        return found


def commands_counted(metrics: Metrics, verb: str, outcome: str, source: str = "slack") -> float:
    labels = {"verb": verb, "outcome": outcome, "source": source}
    return metrics.registry.get_sample_value("meshbot_commands_total", labels) or 0.0


def deny(*who: Actor) -> Callable[[str, Any, Context], str | None]:
    """An authorizer that refuses these people everything and lets everyone else through."""

    def authorize(verb: str, command: Any, ctx: Context) -> str | None:
        return f"{ctx.actor.display_name} may not run {verb}" if ctx.actor in who else None

    return authorize


def run(pipeline: Pipeline, text: str, **kwargs: Any) -> Reply:
    kwargs.setdefault("actor", ALICE)
    kwargs.setdefault("channel", CHANNEL)
    return pipeline.run(text, source=Source.SLACK, **kwargs)


# ---------------------------------------------------------------------- the chain itself


def test_the_steps_run_outermost_first_in_the_documented_order() -> None:
    # Audit and metrics inside events (a thread hears of an end only once its audit row and its
    # count exist), errors inside audit (failures are audited).
    assert tuple(STEPS) == (
        events_step,
        metrics_step,
        audit_step,
        errors_step,
        parse_step,
        authorize_step,
        confirm_step,
    )


# ---------------------------------------------------------------------- one audit row per command


@pytest.mark.parametrize(
    ("text", "denied", "outcome", "verb", "message"),
    [
        ("help dashboard", False, Outcome.OK, "help", "dashboard: links to Grafana"),
        ("teleport web-svc", False, Outcome.REFUSED, "teleport", "unknown command 'teleport'."),
        ("fault", False, Outcome.REFUSED, "fault", "say what to do: delay, abort, list, extend or clear"),
        ('fault "delay', False, Outcome.REFUSED, "", "cannot read the command"),
        ("dashboard jaeger", False, Outcome.REFUSED, "dashboard", "no link for jaeger is configured"),
        (f"use {NS}", True, Outcome.DENIED, "use", "alice may not run use"),
        ("status", False, Outcome.ERROR, "status", "status failed: "),
    ],
)
def test_every_command_is_audited_exactly_once_whatever_its_outcome(
    store: Store, nowhere: Kube, text: str, denied: bool, outcome: Outcome, verb: str, message: str
) -> None:
    pipeline = Pipeline(
        store=store, kube=nowhere, policy=Policy(), authorize=deny(ALICE) if denied else deny()
    )
    reply = run(pipeline, f"/mesh {text}")
    assert reply.outcome == outcome
    (row,) = rows(store)
    assert (row.outcome, row.verb, row.command) == (outcome, verb, f"/mesh {text}")
    assert (row.actor_user_id, row.actor_name, row.source, row.channel) == (
        ALICE.user_id,
        "alice",
        "slack",
        CHANNEL,
    )
    assert row.message.startswith(message) and "\n" not in row.message
    assert row.message == reply.text.splitlines()[0]
    assert row.request_id


def test_an_audited_fault_carries_its_experiment_and_target(store: Store, cluster: Kube) -> None:
    pipeline = Pipeline(store=store, kube=cluster, policy=Policy())
    reply = run(pipeline, f"fault delay 2s web-svc.{NS} for 1m")
    assert reply.ok and reply.experiment_id
    (row,) = rows(store)
    assert (row.experiment_id, row.cluster, row.namespace, row.service) == (
        reply.experiment_id,
        "default",
        NS,
        "web-svc",
    )


def test_a_held_command_is_not_audited_until_it_is_answered(store: Store, nowhere: Kube) -> None:
    asked: list[tuple[str, Any]] = []

    def confirm(verb: str, command: Any, ctx: Context) -> Question | None:
        asked.append((verb, command))
        return Question("Really look at the dashboards?")

    metrics = Metrics()
    pipeline = Pipeline(
        store=store,
        kube=nowhere,
        policy=Policy(dashboards={"grafana": "https://g"}),
        confirm=confirm,
        metrics=metrics,
    )
    held = run(pipeline, "dashboard grafana")
    assert isinstance(held, Unconfirmed)
    assert (held.text, held.verb, held.question, held.ephemeral) == (
        "Really look at the dashboards?",
        "dashboard",
        Question("Really look at the dashboards?"),
        True,
    )
    assert rows(store) == []
    assert commands_counted(metrics, "dashboard", "held") == 1

    # Answered by the one who asked: it runs without asking again, and the row says it was confirmed.
    done = run(pipeline, "dashboard grafana", confirmed_by=ALICE)
    assert done.text == "Grafana: https://g"
    assert len(asked) == 1
    (row,) = rows(store)
    assert row.message == "[confirmed] Grafana: https://g"
    assert commands_counted(metrics, "dashboard", "ok") == 1


def test_withdrawing_a_held_command_audits_and_counts_it_once_as_refused(store: Store, nowhere: Kube) -> None:
    metrics = Metrics()
    pipeline = Pipeline(store=store, kube=nowhere, policy=Policy(), metrics=metrics)
    reply = pipeline.withdraw(
        "/mesh fault clear all",
        actor=ALICE,
        source=Source.SLACK,
        channel=CHANNEL,
        why="nobody confirmed in time",
    )
    assert (reply.outcome, reply.text) == (Outcome.REFUSED, "nobody confirmed in time")
    (row,) = rows(store)
    assert (row.verb, row.outcome, row.message, row.command) == (
        "fault",
        "refused",
        "nobody confirmed in time",
        "/mesh fault clear all",
    )
    assert commands_counted(metrics, "fault", "refused") == 1
    # Even text that no longer splits is recorded, under no verb.
    pipeline.withdraw('fault "clear', actor=ALICE, source=Source.SLACK, channel=None, why="cancelled")
    assert rows(store)[-1].verb == ""
    assert commands_counted(metrics, "unknown", "refused") == 1


# ---------------------------------------------------------------------- metrics


def test_each_command_is_counted_once_by_verb_outcome_and_source(store: Store, nowhere: Kube) -> None:
    metrics = Metrics()
    pipeline = Pipeline(store=store, kube=nowhere, policy=Policy(), metrics=metrics, authorize=deny(BOB))
    run(pipeline, "help")
    run(pipeline, "help")
    pipeline.run("help", actor=ALICE, source=Source.CLI)
    run(pipeline, "teleport")
    run(pipeline, f"use {NS}", actor=BOB)
    run(pipeline, "status")
    assert commands_counted(metrics, "help", "ok") == 2
    assert commands_counted(metrics, "help", "ok", source="cli") == 1
    assert commands_counted(metrics, "unknown", "refused") == 1
    assert commands_counted(metrics, "teleport", "refused") == 0
    assert commands_counted(metrics, "use", "denied") == 1
    assert commands_counted(metrics, "status", "error") == 1
    assert len(rows(store)) == 6


# ---------------------------------------------------------------------- events


def test_experiment_events_are_published_once_after_their_audit_row(store: Store, cluster: Kube) -> None:
    pipeline = Pipeline(store=store, kube=cluster, policy=Policy())
    heard: list[tuple[Published, list[str]]] = []

    def follow(published: Published) -> None:
        # What a fault's thread does on hearing of it: look the command up in the audit log.
        with store.read() as session:
            commands = list(
                session.scalars(
                    select(AuditEvent.command).where(
                        AuditEvent.experiment_id == published.event.experiment_id
                    )
                )
            )
        heard.append((published, commands))

    pipeline.events.subscribe(follow)
    started = run(pipeline, f"fault abort 500 10% web-svc.{NS}")
    eid = started.experiment_id
    assert eid
    run(pipeline, "fault list")
    run(pipeline, f"fault extend {eid} 1m", actor=BOB, channel="C0OTHER")
    cleared = pipeline.run(f"fault clear {eid}", actor=ALICE, source=Source.CLI)

    assert [(p.event.kind, p.event.experiment_id) for p, _ in heard] == [
        ("started", eid),
        ("extended", eid),
        ("ended", eid),
    ]
    assert [(p.actor, p.source, p.channel) for p, _ in heard] == [
        (ALICE, Source.SLACK, CHANNEL),
        (BOB, Source.SLACK, "C0OTHER"),
        (ALICE, Source.CLI, None),
    ]
    assert heard[0][0].event == started.events[0]
    assert heard[2][0].event.text == cleared.text
    # Each subscriber call already found its own command's row.
    assert heard[0][1] == [f"fault abort 500 10% web-svc.{NS}"]
    assert heard[1][1][-1] == f"fault extend {eid} 1m"
    assert heard[2][1][-1] == f"fault clear {eid}"


def test_a_failing_subscriber_changes_neither_the_reply_nor_the_others(store: Store, cluster: Kube) -> None:
    pipeline = Pipeline(store=store, kube=cluster, policy=Policy())
    heard: list[str] = []

    def broken(published: Published) -> None:
        raise RuntimeError("Slack is down")

    pipeline.events.subscribe(broken)
    pipeline.events.subscribe(lambda p: heard.append(p.event.kind))
    reply = run(pipeline, f"fault delay 1s web-svc.{NS}")
    assert reply.ok and reply.events and reply.events[0].kind == "started"
    assert heard == ["started"]
    assert [r.outcome for r in rows(store)] == ["ok"]


def test_refused_and_failed_commands_publish_nothing(store: Store, nowhere: Kube) -> None:
    pipeline = Pipeline(store=store, kube=nowhere, policy=Policy())
    heard: list[Published] = []
    pipeline.events.subscribe(heard.append)
    run(pipeline, "fault clear exp-dead")
    run(pipeline, f"fault delay 1s web-svc.{NS}")  # the closed port: an error
    assert heard == []
    assert [r.outcome for r in rows(store)] == ["refused", "error"]


# ---------------------------------------------------------------------- authorization


def test_an_approver_who_may_not_run_the_command_cannot_approve_it(store: Store, nowhere: Kube) -> None:
    pipeline = Pipeline(store=store, kube=nowhere, policy=Policy(), authorize=deny(BOB))
    reply = run(pipeline, "help", confirmed_by=BOB)
    assert reply.outcome == Outcome.DENIED
    assert reply.text == f"{BOB} may not approve this: bob may not run help"
    (row,) = rows(store)
    assert row.outcome == "denied"
    assert "approved by" not in row.message
    assert row.message == reply.text


def test_an_allowed_approver_is_named_in_the_audit_row(store: Store, nowhere: Kube) -> None:
    pipeline = Pipeline(store=store, kube=nowhere, policy=Policy(), authorize=deny())
    run(pipeline, "help status", confirmed_by=BOB)
    (row,) = rows(store)
    assert row.message.startswith(f"[approved by {BOB}] status: ")
    assert row.actor_user_id == ALICE.user_id


def test_the_command_is_split_once_and_the_authorizer_sees_the_words(
    store: Store, nowhere: Kube, monkeypatch: pytest.MonkeyPatch
) -> None:
    splits: list[str] = []
    real_words = bot.pipeline.words

    def counting(text: str) -> list[str]:
        splits.append(text)
        return real_words(text)

    monkeypatch.setattr(bot.pipeline, "words", counting)
    seen: list[tuple[str, tuple[str, ...], Any]] = []

    def authorize(verb: str, command: Any, ctx: Context) -> str | None:
        seen.append((verb, ctx.words, command))
        return None

    pipeline = Pipeline(store=store, kube=nowhere, policy=Policy(), authorize=authorize)
    text = f'/mesh schedule "fault delay 3s web-svc.{NS} for 15m" every "0 14 * * 2"'
    run(pipeline, text)
    assert splits == [text]
    ((verb, words, command),) = seen
    assert verb == "schedule"
    assert words == ("schedule", f"fault delay 3s web-svc.{NS} for 15m", "every", "0 14 * * 2")
    assert command.cron == "0 14 * * 2"
    # An empty command is `help`, still split once.
    run(pipeline, "/mesh")
    assert seen[-1][:2] == ("help", ("help",))
    assert len(splits) == 2


# ---------------------------------------------------------------------- single steps


def _call(store: Store, kube: Kube, text: str = "status") -> Call:
    ctx = Context(
        actor=ALICE,
        source=Source.API,
        channel=CHANNEL,
        command_text=text,
        request_id="r1",
        kube=kube,
        store=store,
        policy=Policy(),
    )
    return Call(ctx, "status", [])


@pytest.mark.parametrize(
    ("raised", "outcome", "text", "usage_error"),
    [
        (
            UsageError("name one", "status [<namespace>]"),
            Outcome.REFUSED,
            "name one\nUsage: status [<namespace>]",
            True,
        ),
        (Refused("not here", target=Target(namespace=NS)), Outcome.REFUSED, "not here", False),
        (
            Unavailable("the API server is down"),
            Outcome.ERROR,
            "status failed: the API server is down",
            False,
        ),
        (StoreError("locked"), Outcome.ERROR, "status failed: the experiment store: locked", False),
    ],
)
def test_errors_step_turns_what_steps_below_raise_into_one_reply(
    store: Store, nowhere: Kube, raised: Exception, outcome: Outcome, text: str, usage_error: bool
) -> None:
    def below(call: Call) -> Reply:
        raise raised

    reply = errors_step(Pipeline(store=store, kube=nowhere, policy=Policy()), _call(store, nowhere), below)
    assert (reply.outcome, reply.text, reply.usage_error) == (outcome, text, usage_error)
    if isinstance(raised, Refused):
        assert reply.target == Target(namespace=NS)


def test_audit_and_events_steps_leave_a_held_reply_alone(store: Store, nowhere: Kube) -> None:
    pipeline = Pipeline(store=store, kube=nowhere, policy=Policy())
    heard: list[Published] = []
    pipeline.events.subscribe(heard.append)
    held = Unconfirmed("sure?", question=Question("sure?"), verb="status")
    assert audit_step(pipeline, _call(store, nowhere), lambda c: held) is held
    assert rows(store) == []

    event = ExperimentEvent("ended", "exp-1a2b", "gone")
    ended = Reply("gone", events=(event, event))
    assert events_step(pipeline, _call(store, nowhere), lambda c: ended) is ended
    assert [p.event for p in heard] == [event, event]
    assert {(p.actor, p.source, p.channel) for p in heard} == {(ALICE, Source.API, CHANNEL)}


def test_parse_step_hands_on_only_a_typed_command_of_a_known_verb(store: Store, nowhere: Kube) -> None:
    pipeline = Pipeline(store=store, kube=nowhere, policy=Policy())
    reached: list[Call] = []

    def after(call: Call) -> Reply:
        reached.append(call)
        return Reply("ok")

    assert parse_step(pipeline, _call(store, nowhere, f"/mesh status {NS}"), after).text == "ok"
    (call,) = reached
    assert (call.verb, call.args, call.ctx.words) == ("status", [NS], ("status", NS))
    assert call.command.namespace == NS and call.handler is not None and call.handler.VERB == "status"
    unknown = parse_step(pipeline, _call(store, nowhere, "nope"), after)
    assert unknown.usage_error and unknown.outcome == Outcome.REFUSED
    assert len(reached) == 1


def test_confirm_step_asks_only_when_not_yet_answered(store: Store, nowhere: Kube) -> None:
    pipeline = Pipeline(
        store=store, kube=nowhere, policy=Policy(), confirm=lambda verb, command, ctx: Question("sure?")
    )
    ran = Reply("ran")
    call = _call(store, nowhere)
    asked = confirm_step(pipeline, call, lambda c: ran)
    assert isinstance(asked, Unconfirmed) and asked.question == Question("sure?")
    call.confirmed_by = ALICE
    assert confirm_step(pipeline, call, lambda c: ran) is ran


def test_metrics_step_counts_after_the_reply_is_known(store: Store, nowhere: Kube) -> None:
    metrics = Metrics()
    pipeline = Pipeline(store=store, kube=nowhere, policy=Policy(), metrics=metrics)
    metrics_step(pipeline, _call(store, nowhere), lambda c: Reply.denied("no"))
    assert commands_counted(metrics, "status", "denied", source="api") == 1
