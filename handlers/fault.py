"""`fault …`: inject an HTTP delay or abort on a service that expires by itself; list, extend, clear.

What a fault experiment is — starting, extending, and the one way it ends — lives in
domain.experiments and domain.ending; this verb parses, builds the fault, and words the reply.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from core.durations import human_duration
from core.errors import Refused
from core.guards import Guard, GuardError, parse_guards
from core.store import (
    EndReason,
    Experiment,
    ExperimentNotFound,
    get_experiment,
    list_active,
    list_failed,
)
from core.values import Target
from domain import ending, experiments
from domain.ending import Verdict
from domain.live import describe_fault, live_faults, state_of
from domain.preflight import preflight
from handlers import parse
from handlers.context import Context
from handlers.errors import UsageError
from handlers.reply import ExperimentEvent, Reply
from handlers.verb import READS, Access, Everywhere, Namespace, OfExperiment, Starts
from mesh.errors import MeshError
from mesh.faults import FaultSpec, InvalidFault, abort_fault, delay_fault, validate_headers
from mesh.virtualservices import FaultPlan, list_marked_faults, plan_fault

VERB = "fault"
HELP = "inject an HTTP delay or abort that ends by itself; list, extend or clear faults"
FORMS = {
    "delay": "fault delay <duration> <service> [<p>%] [for <duration>] [header=<name>:<value>] "
    '[guard="error_rate(<svc>) > 20%" …] [--dry-run]',
    "abort": "fault abort <http-status|grpc-code> <service> [<p>%] [for <duration>] [header=<name>:<value>] "
    '[guard="error_rate(<svc>) > 20%" …] [--dry-run]',
    "list": "fault list [<namespace>]",
    "extend": "fault extend <experiment-id> <duration>",
    "clear": "fault clear <experiment-id|service|all>",
}
USAGE = " | ".join(FORMS.values())
# The experiment id a dry run plans with: it is never recorded, only named in the patch shown.
DRY_RUN_ID = "exp-dry-run"


def rules(command: FaultCommand) -> Access:
    match command:
        case ListCommand():
            return READS
        case StartCommand():
            where = Namespace(command.service.namespace)
            if command.dry_run:
                # Nothing starts, so nothing to confirm; still an operator's look at the namespace.
                return Access(role="operator", where=where)
            return Access(role="operator", where=where, starts=Starts(command.kind, command.percentage))
        case ExtendCommand():
            return Access(role="operator", where=OfExperiment(command.experiment_id))
        case ClearCommand(everything=True):
            return Access(role="admin", where=Everywhere("it clears faults in every namespace"))
        case ClearCommand(experiment_id=str(experiment_id)):
            return Access(role="operator", where=OfExperiment(experiment_id), exempt_from_two_person=True)
        case ClearCommand(service=service):
            named = service.namespace if service is not None else None
            return Access(role="operator", where=Namespace(named), exempt_from_two_person=True)


@dataclass(frozen=True)
class StartCommand:
    kind: Literal["delay", "abort"]
    service: parse.ServiceRef
    percentage: float
    duration: timedelta | None  # None: the policy's default
    delay: timedelta | None = None
    http_status: int | None = None
    grpc_status: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # False when the 100% default applies, so a policy refusal can say a percentage is needed.
    percentage_given: bool = field(default=True, compare=False)
    # Empty: the policy's default guards for the namespace, if any.
    guards: tuple[Guard, ...] = ()
    # Show the pre-flight warnings and the planned patch; apply and record nothing.
    dry_run: bool = False


@dataclass(frozen=True)
class ListCommand:
    namespace: str | None


@dataclass(frozen=True)
class ExtendCommand:
    experiment_id: str
    by: timedelta


@dataclass(frozen=True)
class ClearCommand:
    # An experiment id, or a service (all its faults), or everything (`clear all`).
    experiment_id: str | None = None
    service: parse.ServiceRef | None = None
    everything: bool = False


FaultCommand = StartCommand | ListCommand | ExtendCommand | ClearCommand


ACTIONS = ("delay", "abort", "list", "extend", "clear")
_BARE_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")


def parse_args(args: list[str]) -> FaultCommand:
    try:
        return _parse(args)
    except parse.ParseError as exc:
        # Show the form of the action that was attempted, not all five.
        form = FORMS.get(args[0].lower(), USAGE) if args else USAGE
        raise UsageError(str(exc), form) from None


def _parse(args: list[str]) -> FaultCommand:
    if not args:
        raise parse.ParseError("say what to do: delay, abort, list, extend or clear")
    action, rest = args[0].lower(), args[1:]
    if action == "delay":
        return _parse_start("delay", rest)
    if action == "abort":
        return _parse_start("abort", rest)
    if action == "list":
        namespace_flag, rest = parse.service_ref(rest)
        if len(rest) > 1:
            raise parse.ParseError("fault list takes at most a namespace")
        namespace = rest[0] if rest else (namespace_flag.namespace if namespace_flag else None)
        return ListCommand(parse.name(namespace, what="namespace") if namespace else None)
    if action == "extend":
        if len(rest) != 2:
            raise parse.ParseError("fault extend needs an experiment id and a duration, e.g. exp-7f3a 10m")
        return ExtendCommand(_experiment_id(rest[0]), parse.duration(rest[1], what="extension"))
    if action == "clear":
        namespace_flag, rest = parse.service_ref(rest)
        if len(rest) != 1:
            raise parse.ParseError("fault clear needs one experiment id, one service, or `all`")
        if rest[0] == "all":
            return ClearCommand(everything=True)
        if rest[0].startswith("exp-"):
            return ClearCommand(experiment_id=_experiment_id(rest[0]))
        return ClearCommand(service=parse.service_word(rest[0], namespace_flag))
    hint = parse.did_you_mean(action, ACTIONS) or ": use delay, abort, list, extend or clear"
    raise parse.ParseError(f"unknown fault action {action!r}{hint}")


def _experiment_id(word: str) -> str:
    if not (word.startswith("exp-") and parse.DNS1123_LABEL.fullmatch(word)):
        raise parse.ParseError(f"{word!r} is not an experiment id like exp-7f3a")
    return word


def _parse_start(kind: Literal["delay", "abort"], args: list[str]) -> StartCommand:
    flags, args = parse.flags(args, {"--dry-run"})
    command = _parse_fault(kind, [a for a in args if not a.startswith("guard=")])
    return replace(command, guards=_guards(args), dry_run="--dry-run" in flags)


def _guards(args: list[str]) -> tuple[Guard, ...]:
    # Taken out before parse.options, which allows each option once: several guards are normal.
    try:
        return tuple(parse_guards([a.removeprefix("guard=") for a in args if a.startswith("guard=")]))
    except GuardError as exc:
        raise parse.ParseError(str(exc)) from None


def _parse_fault(kind: Literal["delay", "abort"], args: list[str]) -> StartCommand:
    namespace_flag, args = parse.service_ref(args)
    opts, args = parse.options(args, {"header"})
    headers: dict[str, str] = {}
    if "header" in opts:
        header, colon, value = opts["header"].partition(":")
        if not colon or not header or not value:
            raise parse.ParseError(f"header={opts['header']} must look like header=<name>:<value>")
        try:
            headers = validate_headers({header: value})
        except InvalidFault as exc:
            raise parse.ParseError(str(exc)) from None
    duration: timedelta | None = None
    if args.count("for") > 1:
        raise parse.ParseError("give one `for <duration>`")
    if "for" in args:
        at = args.index("for")
        if at + 1 >= len(args):
            raise parse.ParseError("`for` needs a duration after it, e.g. for 10m")
        duration = parse.duration(args[at + 1], what="fault duration")
        args = args[:at] + args[at + 2 :]
    percentages = [a for a in args if parse.is_percentage(a)]
    if len(percentages) > 1:
        raise parse.ParseError("give one percentage")
    percentage = parse.percentage(percentages[0]) if percentages else 100.0
    args = [a for a in args if a not in percentages]
    _two_words(kind, args)
    amount, service_word = args
    service = parse.service_word(service_word, namespace_flag)
    if kind == "delay":
        delay = parse.duration(amount, what="delay")
        return StartCommand(
            kind,
            service,
            percentage,
            duration,
            delay=delay,
            headers=headers,
            percentage_given=bool(percentages),
        )
    if re.fullmatch(r"[0-9]+", amount):
        if len(amount) > 3:
            # The same words as mesh.faults would use, without int() on thousands of digits.
            raise parse.ParseError(
                f"HTTP status must be between 200 and 599, got a {len(amount)}-digit number"
            )
        return StartCommand(
            kind,
            service,
            percentage,
            duration,
            http_status=int(amount),
            headers=headers,
            percentage_given=bool(percentages),
        )
    return StartCommand(
        kind,
        service,
        percentage,
        duration,
        grpc_status=amount,
        headers=headers,
        percentage_given=bool(percentages),
    )


def _two_words(kind: str, args: list[str]) -> None:
    """What remains must be `<amount> <service>`; otherwise name the word that is out of place."""
    what = "a delay like 3s" if kind == "delay" else "an HTTP status like 500 or a gRPC code"
    if not args:
        raise parse.ParseError(f"fault {kind} needs {what} and a service")
    if len(args) == 1:
        raise parse.ParseError(f"fault {kind} needs {what} and a service; only {args[0]!r} was given")
    if len(args) == 2:
        return
    # A bare number after the amount is a percentage without its `%`.
    bare = next((a for a in args[1:] if _BARE_NUMBER.fullmatch(a)), None)
    if bare is not None:
        raise parse.ParseError(f"{bare!r} looks like a percentage: write {bare}%")
    extra = args[2]
    hint = parse.did_you_mean(extra, ("for",)) or (
        ": after the service only a percentage (50%), `for <duration>` and header=<name>:<value> may follow"
    )
    raise parse.ParseError(f"unexpected word {extra!r} after the service {args[1]}{hint}")


def handle(command: FaultCommand, ctx: Context) -> Reply:
    if isinstance(command, StartCommand):
        return _start(command, ctx)
    if isinstance(command, ListCommand):
        return _list(command, ctx)
    if isinstance(command, ExtendCommand):
        return _extend(command, ctx)
    return _clear(command, ctx)


# ---------------------------------------------------------------- inject


def fault_spec(command: StartCommand, ctx: Context, target: Target) -> FaultSpec:
    """The fault to inject, within the policy's percentage and delay caps (a schedule checks
    these when it is made)."""
    limits = ctx.policy.faults
    if command.percentage > limits.max_percentage:
        typed = command.percentage_given
        hint = (
            "" if typed else f" (100% unless a percentage is given: add one, e.g. {limits.max_percentage:g}%)"
        )
        raise Refused(
            f"{command.percentage:g}% is above the policy's maximum of {limits.max_percentage:g}%{hint}",
            target=target,
        )
    try:
        if command.kind == "delay":
            assert command.delay is not None
            return delay_fault(
                command.delay, command.percentage, max_delay=limits.max_delay, headers=command.headers
            )
        return abort_fault(
            command.percentage,
            http_status=command.http_status,
            grpc_status=command.grpc_status,
            headers=command.headers,
        )
    except InvalidFault as exc:
        raise UsageError(str(exc), FORMS[command.kind]) from None


def _describe(spec: FaultSpec) -> str:
    if spec.kind == "delay":
        assert spec.delay is not None
        what = f"delay {human_duration(spec.delay)}"
    else:
        what = f"abort {spec.http_status if spec.http_status is not None else spec.grpc_status}"
    where = (
        f" for requests with {', '.join(f'{k}: {v}' for k, v in spec.headers.items())}"
        if spec.headers
        else ""
    )
    return f"{what} on {spec.percentage:g}% of requests{where}"


def _start(command: StartCommand, ctx: Context) -> Reply:
    namespace = ctx.namespace(command.service.namespace)
    service = command.service.service
    target = Target(cluster=ctx.cluster, namespace=namespace, service=service)
    spec = fault_spec(command, ctx, target)
    guards = command.guards or default_guards(ctx, namespace)
    if command.dry_run:
        return _dry_run(command, ctx, target, spec)
    _require_a_leader(ctx, target)
    try:
        started = experiments.start(
            namespace=namespace,
            service=service,
            spec=spec,
            duration=command.duration,
            actor=ctx.actor,
            channel=ctx.channel,
            cluster=ctx.cluster,
            kube=ctx.kube,
            store=ctx.store,
            policy=ctx.policy,
            now=ctx.now(),
            guards=guards,
        )
    except experiments.NotApplied as exc:
        experiment_id = exc.experiment_id
        lines = [
            f"Could not inject the fault on {service}.{namespace} "
            f"(experiment {experiment_id}, recorded as failed): {exc}"
        ]
        # The error says whether the undo worked; when it did not, name what stayed and how to end it.
        if exc.left_behind is None:
            lines.append(
                f"⚠ could not check whether experiment {experiment_id} stayed in a VirtualService: "
                f"`fault clear {experiment_id}` removes it if so"
            )
        elif exc.left_behind:
            lines.append(
                f"⚠ experiment {experiment_id} is still in VirtualService {', '.join(exc.left_behind)}: "
                f"`fault clear {experiment_id}` removes it"
            )
        return Reply.error("\n".join(lines), target=target, experiment_id=experiment_id)
    experiment_id = started.experiment_id
    touched = ", ".join(
        f"{c.vs_name} (created)" if c.created else f"{c.vs_name} ({len(c.route_names)} fault route(s) added)"
        for c in started.changes
    )
    lines = [
        f"Experiment {experiment_id}: {_describe(spec)} to {service}.{namespace}.",
        f"VirtualServices: {touched}.",
        f"Ends {started.expires_at:%Y-%m-%d %H:%M:%S} UTC (in {human_duration(started.duration)}). "
        f"Stop it with `fault clear {experiment_id}`.",
    ]
    if guards:
        every = "" if ctx.prometheus is not None else " (no Prometheus is configured: they cannot be checked)"
        lines.append(f"Guards{every}: {'; '.join(g.text() for g in guards)} — two breaches in a row end it.")
    warnings = list(dict.fromkeys([*_preflight(ctx, started), *started.warnings]))
    lines += [f"⚠ {w}" for w in warnings]
    text = "\n".join(lines)
    return Reply(
        text,
        experiment_id=experiment_id,
        target=target,
        events=(ExperimentEvent("started", experiment_id, text),),
        data={
            "kind": spec.kind,
            "percentage": spec.percentage,
            "expires_at": started.expires_at.isoformat(),
            "virtual_services": [c.vs_name for c in started.changes],
            "warnings": warnings,
        },
    )


def _plan(ctx: Context, target: Target, spec: FaultSpec, experiment_id: str) -> FaultPlan:
    assert target.namespace is not None and target.service is not None
    return plan_fault(
        ctx.kube,
        namespace=target.namespace,
        service=target.service,
        spec=spec,
        experiment_id=experiment_id,
        expires_at=ctx.now() + ctx.policy.faults.default_duration,
    )


def _preflight(ctx: Context, started: experiments.Started) -> list[str]:
    """The pre-flight warnings of the plan that was applied. Read once the fault is in: they never
    block, and reading first would put a pods list and a Prometheus query (slow or down, at times)
    between the command and the fault; the person reads them in the same reply either way."""
    try:
        return preflight(ctx.kube, ctx.prometheus, started.plan)
    except MeshError:
        return []


def _dry_run(command: StartCommand, ctx: Context, target: Target, spec: FaultSpec) -> Reply:
    plan = _plan(ctx, target, spec, DRY_RUN_ID)
    warnings = preflight(ctx.kube, ctx.prometheus, plan)
    lines = [
        f"Dry run, nothing applied or recorded: {_describe(spec)} to {target.service}.{target.namespace}."
    ]
    for change in plan.changes:
        what = change.body if change.created else change.patch
        verb = "create VirtualService" if change.created else "JSON Patch on VirtualService"
        lines.append(f"Would {verb} {change.vs_name}:")
        lines.append(json.dumps(what, indent=1, default=str))
    lines += [f"⚠ {w}" for w in warnings] or ["No pre-flight warnings."]
    return Reply(
        "\n".join(lines),
        target=target,
        data={
            "dry_run": True,
            "kind": spec.kind,
            "percentage": spec.percentage,
            "virtual_services": [c.vs_name for c in plan.changes],
            "warnings": warnings,
        },
    )


def default_guards(ctx: Context, namespace: str) -> tuple[Guard, ...]:
    # Validated when the policy was loaded, so parsing again cannot fail here.
    return tuple(parse_guards(ctx.policy.guards.namespaces.get(namespace, [])))


def _require_a_leader(ctx: Context, target: Target) -> None:
    """A fault promises to end by itself: refuse it while no lifecycle would end it."""
    if ctx.leadership is None:
        return
    leadership = ctx.leadership()
    if not leadership.fresh:
        raise Refused(
            "no meshbot lifecycle is leading, so nothing would end this fault on time "
            f"({leadership.problem}). Run `meshbot serve` or `meshbot lifecycle` against this "
            "cluster, or from the CLI add --wait so the CLI itself ends the fault",
            target=target,
        )


# ---------------------------------------------------------------- list / extend


def _time_left(experiment: Experiment, now: datetime) -> str:
    if experiment.expires_at is None:
        return "not started"
    left = experiment.expires_at - now
    return (
        "overdue"
        if left <= timedelta(0)
        else f"{human_duration(timedelta(seconds=int(left.total_seconds())))} left"
    )


def _listed(e: Experiment) -> str:
    """A `fault list` line's start: which fault, doing what, where, started by whom."""
    who = e.created_by_name or e.created_by_user
    return f"• {e.id} {describe_fault(e)} on {e.service}.{e.namespace} by {who}"


def _list(command: ListCommand, ctx: Context) -> Reply:
    view = live_faults(ctx.store, ctx.kube, cluster=ctx.cluster, namespace=command.namespace)
    now = ctx.now()
    lines = []
    for fault in view.faults:
        e = fault.experiment
        disagreement = state_of(fault)
        when = disagreement or _time_left(e, now)
        lines.append(f"{_listed(e)} — {when}")
    lines += [
        f"• {m.experiment_id} in {m.namespace} (VirtualService {m.vs_name}): in the cluster with no live "
        f"record in meshbot's store; it is removed at its expiry, {m.expires:%H:%M:%S} UTC, or by "
        f"`fault clear {m.experiment_id}`"
        for m in view.unrecorded
    ]
    # A failed start whose write landed after the command gave up is live all the same: a list
    # that left it out said "No active faults" while it injected.
    lines += [
        f"{_listed(e)} — recorded as failed but still in the cluster; "
        + (f"removed at its expiry, {e.expires_at:%H:%M:%S} UTC, or " if e.expires_at else "")
        + f"by `fault clear {e.id}`"
        for e in view.stuck
    ]
    if view.cluster_error:
        lines.append(f"⚠ as recorded; the cluster could not be read to confirm: {view.cluster_error}")
    data = {
        "faults": [_fault_data(f.experiment) for f in view.faults],
        "unrecorded": [
            {"experiment_id": m.experiment_id, "namespace": m.namespace, "expires_at": m.expires.isoformat()}
            for m in view.unrecorded
        ],
        "stuck": [_fault_data(e) for e in view.stuck],
    }
    if not view.faults and not view.unrecorded and not view.stuck:
        return Reply(
            "No active faults." if command.namespace is None else f"No active faults in {command.namespace}.",
            data=data,
        )
    return Reply(
        f"Active faults ({len(view.faults) + len(view.unrecorded) + len(view.stuck)}):\n" + "\n".join(lines),
        data=data,
    )


def _fault_data(e: Experiment) -> dict[str, object]:
    """One experiment as scripts see it in `data` (fault list, status)."""
    return {
        "experiment_id": e.id,
        "kind": e.kind,
        "service": e.service,
        "namespace": e.namespace,
        "cluster": e.cluster,
        "state": e.state,
        "created_by": e.created_by_name or e.created_by_user,
        "expires_at": e.expires_at.isoformat() if e.expires_at else None,
    }


def _extend(command: ExtendCommand, ctx: Context) -> Reply:
    with ctx.store.read() as session:
        try:
            cluster = get_experiment(session=session, experiment_id=command.experiment_id).cluster
        except ExperimentNotFound:
            raise Refused(f"there is no experiment {command.experiment_id}") from None
    extended = experiments.extend(
        experiment_id=command.experiment_id,
        by=command.by,
        max_duration=ctx.policy.faults.max_duration,
        # The annotation the reaper reads is on the experiment's cluster, not the channel's.
        kube=ctx.kube_of(cluster),
        store=ctx.store,
    )
    text = (
        f"Experiment {command.experiment_id} extended by {human_duration(command.by)}; "
        f"it now ends {extended.expires_at:%Y-%m-%d %H:%M:%S} UTC."
    )
    return Reply(
        text,
        experiment_id=command.experiment_id,
        target=extended.target,
        events=(ExperimentEvent("extended", command.experiment_id, text),),
        data={"expires_at": extended.expires_at.isoformat()},
    )


# ---------------------------------------------------------------- clear


@dataclass(frozen=True)
class _ToClear:
    experiment_id: str
    namespace: str
    service: str
    # The store's state, or "unrecorded": in the cluster with no live record (a lost database,
    # a write that landed after its command gave up) — cleared from the cluster alone.
    state: str
    vs_names: tuple[str, ...] = ()
    # The cluster the fault runs on: a clear by id may come from a channel bound to another.
    cluster: str | None = None


def _recorded(e: Experiment) -> _ToClear:
    return _ToClear(
        e.id, e.namespace, e.service, e.state, tuple(v["name"] for v in e.virtual_services), e.cluster
    )


def _still_in_cluster(
    ctx: Context, recorded: list[Experiment], namespace: str | None, service: str | None
) -> list[_ToClear]:
    """What the cluster still carries beyond the active records: failed reverts and, when
    clearing everything, faults without a live record at all."""
    failed = {e.id: e for e in recorded}
    marked = list_marked_faults(ctx.kube, namespace)
    found: dict[str, _ToClear] = {}
    for mark in marked:
        if mark.experiment_id in failed:
            found[mark.experiment_id] = _recorded(failed[mark.experiment_id])
        elif service is None and mark.experiment_id not in found:
            found[mark.experiment_id] = _ToClear(mark.experiment_id, mark.namespace, "?", "unrecorded")
    return list(found.values())


def _clear(command: ClearCommand, ctx: Context) -> Reply:
    with ctx.store.read() as session:
        if command.experiment_id is not None:
            try:
                experiment = get_experiment(session=session, experiment_id=command.experiment_id)
            except ExperimentNotFound:
                raise Refused(f"there is no experiment {command.experiment_id}") from None
            if experiment.state not in ("active", "ending", "failed"):
                raise Refused(f"{command.experiment_id} has already ended ({experiment.end_reason})")
            wanted = [_recorded(experiment)]
        else:
            namespace = ctx.namespace(command.service.namespace) if command.service else None
            service = command.service.service if command.service else None
            active = list_active(session=session, cluster=ctx.cluster, namespace=namespace, service=service)
            failed = [
                e
                for e in list_failed(session=session, cluster=ctx.cluster, namespace=namespace)
                if service is None or e.service == service
            ]
            wanted = [_recorded(e) for e in active]
            live = {e.id for e in active}
            wanted += [
                c for c in _still_in_cluster(ctx, failed, namespace, service) if c.experiment_id not in live
            ]
            if not wanted:
                if service is not None:
                    raise Refused(f"no active faults on {service}.{namespace}")
                return Reply("No active faults: nothing to clear.", data={"cleared": [], "failed": []})
    return _clear_all_of(wanted, ctx, EndReason.HALTED if command.everything else EndReason.CLEARED)


def _clear_all_of(wanted: list[_ToClear], ctx: Context, reason: EndReason) -> Reply:
    lines: list[str] = []
    events: list[ExperimentEvent] = []
    failures = 0
    for item in wanted:
        try:
            line = _clear_one(ctx, item, reason)
            lines.append(line)
            events.append(ExperimentEvent("ended", item.experiment_id, line))
        except ending.PermanentError as exc:
            if len(wanted) == 1:
                # One experiment, ended by someone else between the read and the claim: a refusal,
                # as it is for whoever presses a moment later — not an "ok" that cleared nothing.
                raise
            lines.append(f"• {exc}")
        except ending.TemporaryError as exc:
            failures += 1
            lines.append(
                f"✖ {item.experiment_id} on {item.service}.{item.namespace}: could not be cleared: {exc}"
            )
    single = wanted[0] if len(wanted) == 1 else None
    target = (
        Target(cluster=ctx.cluster, namespace=single.namespace, service=single.service)
        if single
        else Target(cluster=ctx.cluster)
    )
    if len(wanted) > 1:
        # The audit log keeps a reply's first line: make it name every experiment touched.
        # Count what this command cleared: a fault another clear took meanwhile is not ours.
        names = ", ".join(i.experiment_id for i in wanted)
        lines.insert(0, f"Cleared {len(events)} of {len(wanted)} faults: {names}")
    text = "\n".join(lines)
    ended = [e.experiment_id for e in events]
    data = {"cleared": ended, "failed": [i.experiment_id for i in wanted if i.experiment_id not in ended]}
    if failures:
        return replace(Reply.error(text, target=target), events=tuple(events), data=data)
    return Reply(
        text,
        experiment_id=single.experiment_id if single else None,
        target=target,
        events=tuple(events),
        data=data,
    )


# What a person's clear ends, by the state they saw: an active experiment they claim (someone
# claiming it first wins); an `ending` one — a clear or expiry that died half-way — they finish;
# a failed one loses its fault and keeps its record of what went wrong; one with no live record
# is taken out of the cluster whatever the store says.
_ACCEPTS: dict[str, frozenset[Verdict]] = {
    "active": frozenset({Verdict.CLAIMED}),
    "ending": frozenset({Verdict.CLAIMED, Verdict.ENDING}),
    "failed": frozenset({Verdict.FAILED}),
    "unrecorded": ending.ANY_DUE,
}


def _clear_one(ctx: Context, item: _ToClear, reason: EndReason) -> str:
    # No audit row of its own: the pipeline audits the command.
    ended = ending.end(
        ctx.kube_of(item.cluster),
        ctx.store,
        item.experiment_id,
        namespace=item.namespace,
        vs_names=item.vs_names,
        reason=reason,
        by=ctx.actor,
        now=ctx.now(),
        accept=_ACCEPTS[item.state],
    )
    where = f"{item.service}.{item.namespace}" if item.service != "?" else item.namespace
    parts = [f"✔ {item.experiment_id} on {where} cleared ({ended.removed})"]
    if item.state == "unrecorded":
        parts.append("it had no live record in meshbot's store")
    return "; ".join(parts)
