"""`fault …`: inject an HTTP delay or abort on a service that expires by itself; list, extend, clear.

The store hears of a fault before the cluster does (a pending experiment naming the planned
changes), so a crash between the two leaves a record to clean up from — and the VirtualService
annotations carry the expiry, so the reaper can undo a fault even without the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from core.errors import Refused
from core.store import (
    EndReason,
    Experiment,
    ExperimentKind,
    ExperimentNotFound,
    InvalidTransition,
    VirtualServiceChange,
    begin_ending,
    create_experiment,
    end_experiment,
    extend_experiment,
    get_experiment,
    list_active,
    list_failed,
    mark_active,
    mark_failed,
    plan_experiment,
)
from core.values import Target
from handlers import parse
from handlers.context import Context
from handlers.errors import UsageError
from handlers.parse import format_duration
from handlers.reply import ExperimentEvent, Reply
from handlers.verb import READS, Access, Everywhere, Namespace, OfExperiment, Starts
from mesh.errors import MeshError, NotFound
from mesh.faults import FaultSpec, InvalidFault, abort_fault, delay_fault
from mesh.namespaces import require_service
from mesh.virtualservices import (
    apply_fault,
    clear_fault,
    list_marked_faults,
    plan_fault,
    sidecarless_callers,
)

VERB = "fault"
HELP = "inject an HTTP delay or abort that ends by itself; list, extend or clear faults"
FORMS = {
    "delay": "fault delay <duration> <service> [<p>%] [for <duration>] [header=<name>:<value>]",
    "abort": "fault abort <http-status|grpc-code> <service> [<p>%] [for <duration>] [header=<name>:<value>]",
    "list": "fault list [<namespace>]",
    "extend": "fault extend <experiment-id> <duration>",
    "clear": "fault clear <experiment-id|service|all>",
}
USAGE = " | ".join(FORMS.values())


def rules(command: FaultCommand) -> Access:
    match command:
        case ListCommand():
            return READS
        case InjectCommand():
            where = Namespace(command.service.namespace)
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
class InjectCommand:
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


FaultCommand = InjectCommand | ListCommand | ExtendCommand | ClearCommand


def parse_args(args: list[str]) -> FaultCommand:
    try:
        return _parse(args)
    except parse.ParseError as exc:
        # Show the form of the action that was attempted, not all five.
        form = FORMS.get(args[0], USAGE) if args else USAGE
        raise UsageError(str(exc), form) from None


def _parse(args: list[str]) -> FaultCommand:
    if not args:
        raise parse.ParseError("say what to do: delay, abort, list, extend or clear")
    action, rest = args[0], args[1:]
    if action == "delay":
        return _parse_inject("delay", rest)
    if action == "abort":
        return _parse_inject("abort", rest)
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
    raise parse.ParseError(f"unknown fault action {action!r}: use delay, abort, list, extend or clear")


def _experiment_id(word: str) -> str:
    if not (word.startswith("exp-") and parse.DNS1123_LABEL.match(word)):
        raise parse.ParseError(f"{word!r} is not an experiment id like exp-7f3a")
    return word


def _parse_inject(kind: Literal["delay", "abort"], args: list[str]) -> InjectCommand:
    namespace_flag, args = parse.service_ref(args)
    opts, args = parse.options(args, {"header"})
    headers: dict[str, str] = {}
    if "header" in opts:
        header, colon, value = opts["header"].partition(":")
        if not colon or not header or not value:
            raise parse.ParseError(f"header={opts['header']} must look like header=<name>:<value>")
        headers[header] = value
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
    if len(args) != 2:
        what = "a delay" if kind == "delay" else "an HTTP status or gRPC code"
        raise parse.ParseError(f"fault {kind} needs {what} and a service")
    amount, service_word = args
    service = parse.service_word(service_word, namespace_flag)
    if kind == "delay":
        delay = parse.duration(amount, what="delay")
        return InjectCommand(
            kind,
            service,
            percentage,
            duration,
            delay=delay,
            headers=headers,
            percentage_given=bool(percentages),
        )
    if amount.isdigit():
        return InjectCommand(
            kind,
            service,
            percentage,
            duration,
            http_status=int(amount),
            headers=headers,
            percentage_given=bool(percentages),
        )
    return InjectCommand(
        kind,
        service,
        percentage,
        duration,
        grpc_status=amount,
        headers=headers,
        percentage_given=bool(percentages),
    )


def handle(command: FaultCommand, ctx: Context) -> Reply:
    if isinstance(command, InjectCommand):
        return _inject(command, ctx)
    if isinstance(command, ListCommand):
        return _list(command, ctx)
    if isinstance(command, ExtendCommand):
        return _extend(command, ctx)
    return _clear(command, ctx)


# ---------------------------------------------------------------- inject


def _spec(command: InjectCommand, ctx: Context, target: Target) -> FaultSpec:
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
        what = f"delay {format_duration(spec.delay)}"
    else:
        what = f"abort {spec.http_status if spec.http_status is not None else spec.grpc_status}"
    where = (
        f" for requests with {', '.join(f'{k}: {v}' for k, v in spec.headers.items())}"
        if spec.headers
        else ""
    )
    return f"{what} on {spec.percentage:g}% of requests{where}"


def _inject(command: InjectCommand, ctx: Context) -> Reply:
    namespace = ctx.namespace(command.service.namespace)
    service = command.service.service
    target = Target(cluster=ctx.cluster, namespace=namespace, service=service)
    if ctx.policy.is_protected(namespace):
        raise Refused(
            f"namespace {namespace} is protected by policy: faults are not allowed there", target=target
        )
    spec = _spec(command, ctx, target)
    # Checked before an experiment is recorded: a typo'd service is a refusal, not a failed experiment.
    try:
        require_service(ctx.kube, namespace, service)
    except NotFound as exc:
        raise Refused(str(exc), target=target) from None
    limits = ctx.policy.faults
    duration = command.duration or limits.default_duration
    if duration > limits.max_duration:
        raise Refused(
            f"a fault may last at most {format_duration(limits.max_duration)} by policy; "
            f"{format_duration(duration)} asked",
            target=target,
        )
    with ctx.store.write() as session:
        running = list_active(session=session, cluster=ctx.cluster, namespace=namespace)
        if len(running) >= limits.max_concurrent_per_namespace:
            raise Refused(
                f"{namespace} already has {len(running)} active faults, the policy's maximum; "
                "clear one first (`fault list`)",
                target=target,
            )
        experiment = create_experiment(
            session=session,
            kind=ExperimentKind(spec.kind),
            parameters=_parameters(spec),
            cluster=ctx.cluster,
            namespace=namespace,
            service=service,
            duration=duration,
            created_by=ctx.actor,
            channel=ctx.channel,
        )
        experiment_id = experiment.id
    started = ctx.now()
    expires_at = started + duration
    try:
        plan = plan_fault(
            ctx.kube,
            namespace=namespace,
            service=service,
            spec=spec,
            experiment_id=experiment_id,
            expires_at=expires_at,
        )
    except MeshError as exc:
        _fail(ctx, experiment_id, str(exc))
        if isinstance(exc, NotFound):
            raise Refused(str(exc), target=target) from None
        raise
    changes = [
        VirtualServiceChange(
            namespace=namespace,
            name=change.vs_name,
            inserted_routes=list(change.inserted_routes),
            before={
                "spec": change.spec_before,
                "annotations": change.annotations_before,
                "created": change.created,
            },
        )
        for change in plan.changes
    ]
    with ctx.store.write() as session:
        plan_experiment(session=session, experiment_id=experiment_id, changes=changes)
    try:
        applied = apply_fault(ctx.kube, plan)
    except MeshError as exc:
        _fail(ctx, experiment_id, str(exc))
        # The error says whether the undo worked; when it did not, name what stayed and how to end it.
        lines = [
            f"Could not inject the fault on {service}.{namespace} "
            f"(experiment {experiment_id}, recorded as failed): {exc}"
        ]
        left = _left_behind(ctx, namespace, experiment_id)
        if left is None:
            lines.append(
                f"⚠ could not check whether experiment {experiment_id} stayed in a VirtualService: "
                f"`fault clear {experiment_id}` removes it if so"
            )
        elif left:
            lines.append(
                f"⚠ experiment {experiment_id} is still in VirtualService {', '.join(left)}: "
                f"`fault clear {experiment_id}` removes it"
            )
        return Reply.error("\n".join(lines), target=target, experiment_id=experiment_id)
    with ctx.store.write() as session:
        mark_active(session=session, experiment_id=experiment_id, changes=changes, now=started)
    warnings = list(applied.warnings)
    try:
        callers = sidecarless_callers(ctx.kube, namespace)
    except MeshError:
        callers = []
    if callers:
        warnings.append(
            f"pods without a sidecar won't see this fault when they call {service}: {', '.join(callers)}"
        )
    touched = ", ".join(
        f"{c.vs_name} (created)" if c.created else f"{c.vs_name} ({len(c.route_names)} fault route(s) added)"
        for c in applied.changes
    )
    lines = [
        f"Experiment {experiment_id}: {_describe(spec)} to {service}.{namespace}.",
        f"VirtualServices: {touched}.",
        f"Ends {expires_at:%Y-%m-%d %H:%M:%S} UTC (in {format_duration(duration)}). "
        f"Stop it with `fault clear {experiment_id}`.",
    ]
    lines += [f"⚠ {w}" for w in warnings]
    text = "\n".join(lines)
    return Reply(
        text,
        experiment_id=experiment_id,
        target=target,
        events=(ExperimentEvent("started", experiment_id, text),),
    )


def _left_behind(ctx: Context, namespace: str, experiment_id: str) -> list[str] | None:
    """The VirtualServices still carrying the experiment; None when they cannot be read."""
    try:
        marked = list_marked_faults(ctx.kube, namespace)
    except MeshError:
        return None
    return sorted({m.vs_name for m in marked if m.experiment_id == experiment_id})


def _parameters(spec: FaultSpec) -> dict[str, object]:
    params: dict[str, object] = {"percentage": spec.percentage, "headers": dict(spec.headers)}
    if spec.delay is not None:
        params["delay_ms"] = round(spec.delay.total_seconds() * 1000)
    if spec.http_status is not None:
        params["http_status"] = spec.http_status
    if spec.grpc_status is not None:
        params["grpc_status"] = spec.grpc_status
    return params


def _fail(ctx: Context, experiment_id: str, detail: str) -> None:
    with ctx.store.write() as session:
        mark_failed(session=session, experiment_id=experiment_id, detail=detail)


# ---------------------------------------------------------------- list / extend


def _time_left(experiment: Experiment, now: datetime) -> str:
    if experiment.expires_at is None:
        return "not started"
    left = experiment.expires_at - now
    return (
        "overdue"
        if left <= timedelta(0)
        else f"{format_duration(timedelta(seconds=int(left.total_seconds())))} left"
    )


def _list(command: ListCommand, ctx: Context) -> Reply:
    with ctx.store.read() as session:
        active = list_active(session=session, cluster=ctx.cluster, namespace=command.namespace)
        now = ctx.now()
        lines = [
            f"• {e.id} {e.kind} on {e.service}.{e.namespace} by {e.created_by_name or e.created_by_user} — "
            f"{_time_left(e, now)}"
            for e in active
        ]
    if not lines:
        return Reply(
            "No active faults." if command.namespace is None else f"No active faults in {command.namespace}."
        )
    return Reply(f"Active faults ({len(lines)}):\n" + "\n".join(lines))


def _extend(command: ExtendCommand, ctx: Context) -> Reply:
    cap = ctx.policy.faults.max_duration
    with ctx.store.write() as session:
        try:
            experiment = get_experiment(session=session, experiment_id=command.experiment_id)
        except ExperimentNotFound:
            raise Refused(f"there is no experiment {command.experiment_id}") from None
        target = Target(
            cluster=experiment.cluster, namespace=experiment.namespace, service=experiment.service
        )
        total = timedelta(seconds=experiment.duration_seconds) + command.by
        if total > cap:
            raise Refused(
                f"{command.experiment_id} would last {format_duration(total)} in all; "
                f"the policy allows at most {format_duration(cap)}",
                target=target,
            )
        try:
            experiment = extend_experiment(
                session=session, experiment_id=command.experiment_id, by=command.by
            )
        except InvalidTransition:
            raise Refused(
                f"{command.experiment_id} is {experiment.state}, not active: it cannot be extended",
                target=target,
            ) from None
        expires_at = experiment.expires_at
        assert expires_at is not None
    from mesh.virtualservices import update_expiry

    update_expiry(
        ctx.kube, namespace=target.namespace or "", experiment_id=command.experiment_id, expires_at=expires_at
    )
    text = (
        f"Experiment {command.experiment_id} extended by {format_duration(command.by)}; "
        f"it now ends {expires_at:%Y-%m-%d %H:%M:%S} UTC."
    )
    return Reply(
        text,
        experiment_id=command.experiment_id,
        target=target,
        events=(ExperimentEvent("extended", command.experiment_id, text),),
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


def _recorded(e: Experiment) -> _ToClear:
    return _ToClear(e.id, e.namespace, e.service, e.state, tuple(v["name"] for v in e.virtual_services))


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
                return Reply("No active faults: nothing to clear.")
    return _clear_all_of(wanted, ctx, EndReason.HALTED if command.everything else EndReason.CLEARED)


def _clear_all_of(wanted: list[_ToClear], ctx: Context, reason: EndReason) -> Reply:
    lines: list[str] = []
    events: list[ExperimentEvent] = []
    failures = 0
    for item in wanted:
        try:
            line = _revert(ctx, item, reason)
            lines.append(line)
            events.append(ExperimentEvent("ended", item.experiment_id, line))
        except MeshError as exc:
            failures += 1
            lines.append(
                f"✖ {item.experiment_id} on {item.service}.{item.namespace}: could not be reverted: {exc}"
            )
    single = wanted[0] if len(wanted) == 1 else None
    target = (
        Target(cluster=ctx.cluster, namespace=single.namespace, service=single.service)
        if single
        else Target(cluster=ctx.cluster)
    )
    if len(wanted) > 1:
        # The audit log keeps a reply's first line: make it name every experiment touched.
        names = ", ".join(i.experiment_id for i in wanted)
        lines.insert(0, f"Cleared {len(wanted) - failures} of {len(wanted)} faults: {names}")
    text = "\n".join(lines)
    if failures:
        return replace(Reply.error(text, target=target), events=tuple(events))
    return Reply(
        text,
        experiment_id=single.experiment_id if single else None,
        target=target,
        events=tuple(events),
    )


def _revert(ctx: Context, item: _ToClear, reason: EndReason) -> str:
    experiment_id = item.experiment_id
    if item.state == "active":
        with ctx.store.write() as session:
            try:
                begin_ending(session=session, experiment_id=experiment_id, reason=reason, by=ctx.actor)
            except InvalidTransition:
                return f"• {experiment_id} was already being ended by someone else"
    report = clear_fault(
        ctx.kube, namespace=item.namespace, experiment_id=experiment_id, vs_names=list(item.vs_names)
    )
    if item.state in ("active", "ending"):
        # A failed experiment keeps its state and detail, the record of what went wrong; an
        # unrecorded one has no live record to end.
        with ctx.store.write() as session:
            end_experiment(session=session, experiment_id=experiment_id, reason=reason, by=ctx.actor)
    removed = sum(len(c.removed_routes) for c in report.cleared)
    where = f"{item.service}.{item.namespace}" if item.service != "?" else item.namespace
    parts = [f"✔ {experiment_id} on {where} cleared ({removed} fault route(s) removed)"]
    if item.state == "unrecorded":
        parts.append("it had no live record in meshbot's store")
    deleted = [c.vs_name for c in report.cleared if c.deleted]
    if deleted:
        parts.append(f"deleted meshbot's VirtualService {', '.join(deleted)}")
    if report.vanished:
        parts.append(f"VirtualService {', '.join(report.vanished)} had been deleted meanwhile")
    return "; ".join(parts)
