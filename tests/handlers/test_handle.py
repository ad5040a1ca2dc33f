"""Each verb's `handle(command, ctx)` called directly, without the pipeline: a Context built here,
a migrated SQLite store, and either the playground (verbs that act on the cluster) or a client
pointed at a closed port (verbs that must not), so a stray cluster call fails the test loudly.

Typed commands come from each verb module's own `parse_args`, as the pipeline gets them. The
pipeline's steps (audit rows, errors as replies) are not here: tests/bot/test_pipeline.py has them,
so the audit rows counted below are only the ones the domain writes itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import func, select

from core.clock import utcnow
from core.errors import Refused
from core.policy import FaultLimits, Policy
from core.store import (
    Actor,
    AuditEvent,
    Experiment,
    Source,
    Store,
    get_binding,
    get_experiment,
    list_schedules,
    next_run,
    record_event,
)
from core.store.schedules import POSTPONE_VERB, SKIP_VERB
from core.values import Outcome, Target
from handlers import (
    VERBS,
    audit,
    dashboard,
    expose,
    fault,
    inject,
    pause,
    postpone,
    resume,
    schedule,
    schedule_list,
    skip,
    status,
    unexpose,
    uninject,
    unschedule,
    use,
)
from handlers import help as help_
from handlers.context import Context
from handlers.errors import UsageError
from handlers.parse import words as parse_words
from handlers.reply import Reply
from mesh.clusters import Clusters
from mesh.kube import Kube, for_url
from mesh.virtualservices import list_marked_faults
from playground.runner import Playground
from tests.support.sockets import closed_port

NS = "emojivoto-istio"
CHANNEL = "C0CHAOS"
ALICE = Actor(user_id="U0ALICE", team_id="T0001", display_name="alice")
GROUP, VERSION = "networking.istio.io", "v1"
HOST = "emoji-istio.test.net"
CRON = "0 14 * * 2"
POLICY = Policy(dashboards={"grafana": "https://grafana.example/d/mesh", "kiali": "https://kiali.example"})


# ---------------------------------------------------------------------- the floor under the verbs


@pytest.fixture
def nowhere() -> Iterator[Kube]:
    """A cluster nobody answers for: a verb that must stay off the cluster never notices it."""
    kube = for_url(f"http://127.0.0.1:{closed_port()}")
    kube.timeout = 1.0
    yield kube
    kube.close()


@pytest.fixture
def cluster(playground: Playground) -> Iterator[Kube]:
    kube = for_url(playground.url)
    yield kube
    kube.close()


def context(
    store: Store,
    kube: Kube,
    *,
    channel: str | None = CHANNEL,
    policy: Policy = POLICY,
    cluster: str = "default",
    clusters: Clusters | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Context:
    """A Context as Pipeline._context builds one, with every cluster the test names."""
    return Context(
        actor=ALICE,
        source=Source.SLACK,
        channel=channel,
        command_text="",
        request_id="t",
        kube=kube,
        store=store,
        policy=policy,
        cluster=cluster,
        clock=clock,
        clusters=clusters if clusters is not None else Clusters.of({cluster: kube}, default=cluster),
    )


def run(module: ModuleType, text: str, ctx: Context) -> Reply:
    """Parse with the verb's own parse_args, then handle — what the pipeline's last steps do."""
    words = tuple(parse_words(text)) if text else ()
    ctx.command_text, ctx.words = f"{module.VERB} {text}".strip(), (module.VERB, *words)
    reply = module.handle(module.parse_args(list(words)), ctx)
    assert isinstance(reply, Reply)
    return reply


def audit_rows(store: Store) -> list[AuditEvent]:
    with store.read() as session:
        rows = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
        session.expunge_all()
        return rows


def count(store: Store, model: type[Any]) -> int:
    with store.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def experiment(store: Store, experiment_id: str) -> Experiment:
    with store.read() as session:
        found = get_experiment(session=session, experiment_id=experiment_id)
        session.expunge(found)
        return found


def virtual_service(kube: Kube, name: str) -> dict[str, Any]:
    found: dict[str, Any] = kube.custom.get_namespaced_custom_object(
        GROUP, VERSION, NS, "virtualservices", name
    )
    return found


def route_names(kube: Kube, name: str) -> list[str]:
    return [route.get("name", "") for route in virtual_service(kube, name)["spec"]["http"]]


# ---------------------------------------------------------------------- help, status, use


def test_help_lists_every_verb_and_one_verbs_form(store: Store, nowhere: Kube) -> None:
    ctx = context(store, nowhere)
    listing = run(help_, "", ctx)
    for record in VERBS.values():
        assert f"`{record.USAGE}` — {record.HELP}" in listing.text
    assert listing.ephemeral and listing.ok
    one = run(help_, "fault", ctx)
    assert one.text == f"fault: {fault.HELP}\nUsage: /mesh {fault.USAGE}"
    with pytest.raises(UsageError, match="unknown verb 'teleport'"):
        help_.parse_args(["teleport"])


def test_status_names_the_cluster_and_its_control_plane(store: Store, cluster: Kube) -> None:
    reply = run(status, "", context(store, cluster, cluster="east"))
    lines = reply.text.splitlines()
    assert lines[0] == f"Cluster *east* ({cluster.host})"
    assert lines[1] == "*Control plane*"
    assert "✔ istiod 1/1 1.24.2" in lines
    assert "No namespace is labelled for injection." in lines
    assert reply.text.endswith("*Active faults*\nNone.")
    assert reply.target == Target(cluster="east")
    assert run(status, NS, context(store, cluster)).text.startswith("Cluster *default* (")


def test_use_binds_the_channel_to_a_namespace_of_the_cluster(store: Store, cluster: Kube) -> None:
    reply = run(use, NS, context(store, cluster))
    assert reply.text == f"This channel now uses namespace {NS} on cluster default by default."
    assert reply.target == Target(cluster="default", namespace=NS)
    with store.read() as session:
        binding = get_binding(session=session, channel=CHANNEL)
        assert binding is not None
        assert (binding.namespace, binding.cluster, binding.updated_by_user) == (NS, "default", ALICE.user_id)
    # The binding is what a later command without a namespace acts on.
    assert context(store, cluster).namespace(None) == NS


def test_use_refuses_a_namespace_the_cluster_does_not_have(store: Store, cluster: Kube) -> None:
    with pytest.raises(Refused, match="no-such-ns"):
        run(use, "no-such-ns", context(store, cluster))
    with store.read() as session:
        assert get_binding(session=session, channel=CHANNEL) is None


def test_use_refuses_without_a_channel_or_with_an_unknown_cluster(store: Store, nowhere: Kube) -> None:
    # Both are refused before the cluster is asked anything: the closed port stays unasked.
    with pytest.raises(Refused, match="this command came without a channel"):
        run(use, NS, context(store, nowhere, channel=None))
    with pytest.raises(Refused, match="unknown cluster elsewhere; configured clusters: default"):
        run(use, f"{NS} cluster=elsewhere", context(store, nowhere))
    with store.read() as session:
        assert get_binding(session=session, channel=CHANNEL) is None


# ---------------------------------------------------------------------- fault


def test_a_fault_starts_is_listed_extended_and_cleared_in_its_virtualservice(
    store: Store, cluster: Kube
) -> None:
    ctx = context(store, cluster)
    # A VirtualService that already routes to web-svc: the fault goes into it, before that route.
    run(expose, f"web-svc.{NS} host={HOST} gateway=emojivoto", ctx)
    before = virtual_service(cluster, "emojivoto")["spec"]

    started = run(fault, f"abort 500 50% web-svc.{NS} for 10m", ctx)
    eid = started.experiment_id
    assert started.ok and eid is not None and eid.startswith("exp-")
    assert started.target == Target(cluster="default", namespace=NS, service="web-svc")
    assert started.text.startswith(f"Experiment {eid}: abort 500 on 50% of requests to web-svc.{NS}.")
    assert "VirtualServices: emojivoto (1 fault route(s) added)." in started.text
    assert [(e.kind, e.experiment_id, e.text) for e in started.events] == [("started", eid, started.text)]
    assert route_names(cluster, "emojivoto")[0] == f"meshbot-{eid}"
    record = experiment(store, eid)
    assert (record.state, record.created_by_user, record.channel) == ("active", ALICE.user_id, CHANNEL)

    listed = run(fault, "list", ctx)
    assert listed.text.startswith("Active faults (1):\n")
    assert f"• {eid} abort 500 on 50% on web-svc.{NS} by alice — " in listed.text
    assert listed.events == ()

    extended = run(fault, f"extend {eid} 5m", ctx)
    assert extended.ok and extended.experiment_id == eid
    assert extended.text.startswith(f"Experiment {eid} extended by 5m; it now ends ")
    assert [(e.kind, e.experiment_id) for e in extended.events] == [("extended", eid)]
    assert record.expires_at is not None
    assert experiment(store, eid).expires_at == record.expires_at + timedelta(minutes=5)
    (mark,) = [m for m in list_marked_faults(cluster, NS) if m.experiment_id == eid]
    assert (mark.vs_name, mark.routes) == ("emojivoto", (f"meshbot-{eid}",))
    # The annotation the reaper reads moved too (it keeps whole seconds).
    assert mark.expires == (record.expires_at + timedelta(minutes=5)).replace(microsecond=0)

    cleared = run(fault, f"clear {eid}", ctx)
    assert cleared.ok and cleared.experiment_id == eid
    assert cleared.text.startswith(f"✔ {eid} on web-svc.{NS} cleared (")
    assert [(e.kind, e.experiment_id, e.text) for e in cleared.events] == [("ended", eid, cleared.text)]
    assert cleared.target == Target(cluster="default", namespace=NS, service="web-svc")
    assert virtual_service(cluster, "emojivoto")["spec"] == before
    assert experiment(store, eid).state == "ended"
    assert run(fault, "list", ctx).text == "No active faults."


def test_clearing_all_ends_every_fault_and_names_them_on_the_first_line(store: Store, cluster: Kube) -> None:
    ctx = context(store, cluster)
    first = run(fault, f"delay 2s web-svc.{NS}", ctx).experiment_id
    second = run(fault, f"abort 503 10% emoji-svc.{NS}", ctx).experiment_id
    assert first and second
    cleared = run(fault, "clear all", ctx)
    assert cleared.ok and cleared.experiment_id is None
    assert cleared.text.splitlines()[0] == f"Cleared 2 of 2 faults: {first}, {second}"
    assert sorted(e.experiment_id for e in cleared.events) == sorted([first, second])
    assert {e.kind for e in cleared.events} == {"ended"}
    assert list_marked_faults(cluster, NS) == []
    assert run(fault, "clear all", ctx).text == "No active faults: nothing to clear."


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abort 500 web-svc.istio-system", "namespace istio-system is protected by policy"),
        ("abort 500 web-svc", "no namespace given and this channel has no default"),
        ("extend exp-dead 5m", "there is no experiment exp-dead"),
        ("clear exp-dead", "there is no experiment exp-dead"),
    ],
)
def test_fault_refusals_change_nothing_and_never_reach_the_cluster(
    store: Store, nowhere: Kube, text: str, message: str
) -> None:
    with pytest.raises(Refused, match=message):
        run(fault, text, context(store, nowhere))
    assert count(store, Experiment) == 0


def test_a_percentage_over_the_policys_cap_is_refused_before_anything_is_recorded(
    store: Store, nowhere: Kube
) -> None:
    capped = Policy(faults=FaultLimits(max_percentage=20))
    with pytest.raises(Refused, match=r"100% is above the policy's maximum of 20% \(100% unless"):
        run(fault, f"abort 500 web-svc.{NS}", context(store, nowhere, policy=capped))
    assert count(store, Experiment) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"abort 500 nope-svc.{NS}", "nope-svc"),
        (f"delay 2s web-svc.{NS} for 2h", "a fault may last at most 1h by policy; 2h asked"),
    ],
)
def test_what_the_cluster_or_policy_rules_out_is_refused_before_it_is_recorded(
    store: Store, cluster: Kube, text: str, message: str
) -> None:
    with pytest.raises(Refused, match=message):
        run(fault, text, context(store, cluster))
    assert count(store, Experiment) == 0
    assert list_marked_faults(cluster, NS) == []


def test_clearing_an_experiment_by_id_clears_it_on_its_own_cluster(
    store: Store, make_playground: Callable[..., Playground]
) -> None:
    here, there = for_url(make_playground().url), for_url(make_playground().url)
    clusters = Clusters.of({"default": here, "other": there}, default="default")
    started = run(fault, f"abort 500 web-svc.{NS}", context(store, there, cluster="other", clusters=clusters))
    eid = started.experiment_id
    assert eid is not None
    try:
        cleared = run(fault, f"clear {eid}", context(store, here, clusters=clusters))
    except Refused:
        # Refusing is as good as clearing it on its own cluster: what matters is not lying.
        assert experiment(store, eid).state == "active"
        return
    finally:
        still_there = [m.experiment_id for m in list_marked_faults(there, NS)]
        here.close()
        there.close()
    assert cleared.ok
    assert eid not in still_there, f"{eid} reported cleared ({cleared.text}) but cluster other still has it"


# ---------------------------------------------------------------------- schedules


def test_a_schedule_is_listed_paused_resumed_and_unscheduled(store: Store, nowhere: Kube) -> None:
    ctx = context(store, nowhere)
    made = run(schedule, f'"fault delay 3s web-svc.{NS} for 15m" every "{CRON}"', ctx)
    (row,) = _schedules(store)
    assert made.text.startswith(f"Scheduled {row.id}: `fault delay 3s web-svc.{NS} for 15m` every")
    assert made.target == Target(cluster="default", namespace=NS, service="web-svc")
    assert (row.cron, row.channel, row.enabled, row.created_by_user) == (CRON, CHANNEL, True, ALICE.user_id)
    assert row.reminder_lead_seconds == 600

    listed = run(schedule_list, "", ctx)
    assert listed.text.startswith("Schedules (1):\n")
    assert f"• {row.id} `{row.command}` — every " in listed.text and "; next " in listed.text

    paused = run(pause, row.id, ctx)
    assert paused.text.startswith(f"Paused schedule {row.id} (")
    assert paused.target == Target(cluster="default", namespace=NS, service="web-svc")
    assert _schedules(store)[0].enabled is False
    assert "; paused" in run(schedule_list, "", ctx).text
    with pytest.raises(Refused, match=f"schedule {row.id} is already paused"):
        run(pause, row.id, ctx)

    resumed = run(resume, row.id, ctx)
    assert resumed.text.startswith(f"Resumed schedule {row.id} (") and "next run " in resumed.text
    assert _schedules(store)[0].enabled is True
    with pytest.raises(Refused, match=f"schedule {row.id} is not paused"):
        run(resume, row.id, ctx)

    gone = run(unschedule, row.id, ctx)
    assert gone.text.startswith(f"Deleted schedule {row.id}: `{row.command}`")
    assert _schedules(store) == []
    with pytest.raises(Refused, match=f"there is no schedule {row.id}"):
        run(unschedule, row.id, ctx)
    assert run(schedule_list, "", ctx).text.startswith("No schedules in this channel")
    # Pausing, resuming and deleting write no audit row of their own: the pipeline audits them.
    assert audit_rows(store) == []


def test_a_schedule_relying_on_the_channels_namespace_is_pinned_to_it(store: Store, nowhere: Kube) -> None:
    ctx = context(store, nowhere, policy=Policy(default_namespace=NS))
    run(schedule, '"fault abort 500 10% web-svc" at +2h remind=off', ctx)
    (row,) = _schedules(store)
    assert row.command == f"fault abort 500 10% web-svc -n {NS}"
    assert row.reminder_lead_seconds == 0 and row.cron is None and row.run_at is not None


@pytest.mark.parametrize(
    ("text", "channel", "message"),
    [
        (f'"fault delay 3s web-svc.{NS}" every "{CRON}"', None, "a schedule reports to a channel"),
        ('"fault delay 3s web-svc.kube-system" at +1h', CHANNEL, "namespace kube-system is protected"),
        (f'"fault delay 3s web-svc.{NS} for 3h" at +1h', CHANNEL, "a fault may last at most 1h"),
        (f'"fault delay 3s web-svc.{NS}" at 2001-01-01T00:00Z', CHANNEL, "has already passed"),
    ],
)
def test_schedule_refusals_leave_no_schedule(
    store: Store, nowhere: Kube, text: str, channel: str | None, message: str
) -> None:
    with pytest.raises(Refused, match=message):
        run(schedule, text, context(store, nowhere, channel=channel))
    assert _schedules(store) == []


def test_skipping_a_run_moves_the_listing_to_the_next_one_and_audits_it(store: Store, nowhere: Kube) -> None:
    ctx = context(store, nowhere)
    run(schedule, f'"fault delay 3s web-svc.{NS}" every "{CRON}"', ctx)
    (row,) = _schedules(store)
    now = utcnow()
    first = next_run(row, now)
    assert first is not None
    second = next_run(row, first)
    assert second is not None

    skipped = run(skip, row.id, ctx)
    assert skipped.text.startswith(f"Skipped the {first:%Y-%m-%d %H:%M} UTC run of {row.id}; next run ")
    assert skipped.target == Target(cluster="default", namespace=NS, service="web-svc")
    assert f"next {second:%Y-%m-%d %H:%M} UTC" in run(schedule_list, "", ctx).text
    (event,) = audit_rows(store)
    assert (event.verb, event.actor_user_id, event.source, event.channel) == (
        SKIP_VERB,
        ALICE.user_id,
        "slack",
        CHANNEL,
    )
    assert (event.namespace, event.service, event.outcome) == (NS, "web-svc", "ok")
    assert event.command == f"{SKIP_VERB} {row.id} {first:%Y-%m-%dT%H:%M:%SZ}"
    # The schedule itself stays: a cron schedule loses one run, not its later ones.
    assert _schedules(store)[0].enabled is True


def test_postponing_a_cron_run_makes_a_one_off_for_it_and_audits_both_halves(
    store: Store, nowhere: Kube
) -> None:
    ctx = context(store, nowhere)
    run(schedule, f'"fault delay 3s web-svc.{NS}" every "{CRON}"', ctx)
    (row,) = _schedules(store)
    first = next_run(row, utcnow())
    assert first is not None

    moved = run(postpone, f"{row.id} by=30m", ctx)
    original, one_off = _schedules(store)
    assert original.id == row.id and original.cron == CRON
    assert (one_off.run_at, one_off.command, one_off.cron) == (
        first + timedelta(minutes=30),
        row.command,
        None,
    )
    assert moved.text.startswith(f"Postponed the {first:%Y-%m-%d %H:%M} UTC run of {row.id} by 30m")
    assert f"as {one_off.id}" in moved.text
    assert [(e.verb, e.actor_user_id) for e in audit_rows(store)] == [
        (SKIP_VERB, ALICE.user_id),
        (POSTPONE_VERB, ALICE.user_id),
    ]


def test_postponing_a_one_off_moves_it_and_unknown_ids_are_refused(store: Store, nowhere: Kube) -> None:
    ctx = context(store, nowhere)
    run(schedule, f'"fault delay 3s web-svc.{NS}" at +2h', ctx)
    (row,) = _schedules(store)
    assert row.run_at is not None
    run(postpone, row.id, ctx)
    (after,) = _schedules(store)
    assert after.run_at == row.run_at + timedelta(hours=1)
    for verb in (pause, resume, skip, postpone, unschedule):
        with pytest.raises(Refused, match="there is no schedule sch-dead"):
            run(verb, "sch-dead", ctx)
    assert [e.verb for e in audit_rows(store)] == [POSTPONE_VERB]


def test_skip_picks_the_next_run_after_the_contexts_clock(store: Store, nowhere: Kube) -> None:
    # A Tuesday morning three years ahead: by the Context's clock the next run is that afternoon.
    later = datetime(2031, 3, 4, 9, 0, tzinfo=UTC)
    ctx = context(store, nowhere, clock=lambda: later)
    run(schedule, f'"fault delay 3s web-svc.{NS}" every "{CRON}"', ctx)
    (row,) = _schedules(store)
    skipped = run(skip, row.id, ctx)
    assert skipped.text.startswith(f"Skipped the 2031-03-04 14:00 UTC run of {row.id}")


def _schedules(store: Store) -> list[Any]:
    with store.read() as session:
        rows = list_schedules(session=session)
        session.expunge_all()
        return rows


# ---------------------------------------------------------------------- audit, dashboard


def test_audit_reads_the_rows_newest_first_and_filters_them(store: Store, nowhere: Kube) -> None:
    with store.write() as session:
        for command, outcome in (("status", Outcome.OK), (f"fault abort 500 web-svc.{NS}", Outcome.DENIED)):
            record_event(
                session=session,
                actor=ALICE,
                source=Source.SLACK,
                command=command,
                verb=command.split()[0],
                outcome=outcome,
                message="m",
                channel=CHANNEL,
                target=Target(namespace=NS, service="web-svc") if command != "status" else Target(),
            )
    ctx = context(store, nowhere)
    lines = run(audit, "", ctx).text.splitlines()
    assert lines[0] == "Audit log, newest first (2 shown):"
    assert lines[1].startswith("#2 ") and lines[1].endswith(
        f"alice `fault abort 500 web-svc.{NS}` → denied ({NS}/web-svc)"
    )
    assert lines[2].startswith("#1 ") and lines[2].endswith("alice `status` → ok (-)")
    assert run(audit, "verb=status", ctx).text.splitlines()[1:] == [lines[2]]
    assert run(audit, "limit=1", ctx).text.endswith("More: add `before=2`.")
    assert run(audit, "actor=bob", ctx).text == "No audit events match."
    with pytest.raises(UsageError, match="Usage: audit"):
        run(audit, "colour=blue", ctx)
    assert len(audit_rows(store)) == 2


def test_dashboard_gives_the_policys_links_and_refuses_what_it_lacks(store: Store, nowhere: Kube) -> None:
    ctx = context(store, nowhere)
    assert run(dashboard, "", ctx).text == (
        "Dashboards:\n• grafana: https://grafana.example/d/mesh\n• kiali: https://kiali.example"
    )
    assert run(dashboard, "grafana", ctx).text == "Grafana: https://grafana.example/d/mesh"
    with pytest.raises(Refused, match="no link for jaeger is configured"):
        run(dashboard, "jaeger", ctx)
    with pytest.raises(Refused, match="no dashboards are configured"):
        run(dashboard, "", context(store, nowhere, policy=Policy()))
    with pytest.raises(UsageError, match="unknown dashboard 'splunk'"):
        dashboard.parse_args(["splunk"])


# ---------------------------------------------------------------------- expose, inject


def test_expose_writes_the_gateway_and_route_and_unexpose_takes_them_away(
    store: Store, cluster: Kube
) -> None:
    ctx = context(store, cluster)
    exposed = run(expose, f"web-svc.{NS} host={HOST} gateway=emojivoto", ctx)
    assert exposed.text.splitlines()[0] == (
        f"{HOST} → web-svc.{NS}:80 through Gateway emojivoto-gateway. Created/updated "
        f"Gateway {NS}/emojivoto-gateway, VirtualService {NS}/emojivoto."
    )
    assert f"• http://{HOST}:30080/ via node port 30080 on any node" in exposed.text
    assert exposed.target == Target(cluster="default", namespace=NS, service="web-svc")
    assert virtual_service(cluster, "emojivoto")["spec"]["hosts"] == [HOST]
    again = run(expose, f"web-svc.{NS} host={HOST} gateway=emojivoto", ctx)
    assert "Gateway and VirtualService were already in place." in again.text
    # Named by its Gateway's name, as the write-up names it: the same objects, not new ones.
    by_gateway = run(expose, f"web-svc.{NS} host={HOST} gateway=emojivoto-gateway", ctx)
    assert "Gateway and VirtualService were already in place." in by_gateway.text
    assert _names(cluster, "gateways") == ["emojivoto-gateway"]

    removed = run(unexpose, f"{HOST} -n {NS}", ctx)
    assert removed.text == f"Removed VirtualService {NS}/emojivoto, Gateway {NS}/emojivoto-gateway."
    assert removed.target == Target(cluster="default", namespace=NS)
    assert _names(cluster, "virtualservices") == _names(cluster, "gateways") == []
    # Nothing left to remove is refused, as `expose` refuses what it cannot do, naming where.
    with pytest.raises(Refused, match=f"^meshbot has not exposed {HOST} in namespace {NS}$"):
        run(unexpose, f"{HOST} -n {NS}", ctx)


def test_exposing_a_missing_service_is_refused_and_writes_nothing(store: Store, cluster: Kube) -> None:
    with pytest.raises(Refused, match="nope-svc"):
        run(expose, f"nope-svc.{NS} host={HOST}", context(store, cluster))
    assert _names(cluster, "virtualservices") == _names(cluster, "gateways") == []


def _names(kube: Kube, plural: str) -> list[str]:
    listed = kube.custom.list_namespaced_custom_object(GROUP, VERSION, NS, plural)
    return [item["metadata"]["name"] for item in listed["items"]]


def _injection_label(kube: Kube) -> str | None:
    labels = kube.core.read_namespace(NS).metadata.labels or {}
    return labels.get("istio-injection")


def test_inject_labels_the_namespace_and_uninject_removes_the_label(store: Store, cluster: Kube) -> None:
    ctx = context(store, cluster)
    assert _injection_label(cluster) is None
    injected = run(inject, NS, ctx)
    assert injected.text.splitlines()[0] == f"Sidecar injection enabled for {NS}."
    assert injected.text.endswith(
        "⚠ 4 pod(s) still without a sidecar — restart them (`inject <namespace> --restart`) to add one."
    )
    assert injected.target == Target(cluster="default", namespace=NS)
    assert _injection_label(cluster) == "enabled"
    assert (
        run(inject, NS, ctx).text.splitlines()[0] == f"Sidecar injection enabled for {NS} (it already was)."
    )

    removed = run(uninject, NS, ctx)
    assert removed.text.splitlines()[0] == f"Sidecar injection disabled for {NS}."
    assert "⚠" not in removed.text
    assert _injection_label(cluster) is None
    with pytest.raises(Refused, match="no-such-ns"):
        run(inject, "no-such-ns", ctx)
