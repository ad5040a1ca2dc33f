"""Every rule a command is checked against, through `meshbot run`: the message a person reads, the
exit code, nothing written to the cluster, and the attempt audited as refused."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest
from typer.testing import Result

from handlers import VERBS
from tests.scenarios.conftest import NS, Meshbot

ABORT = f"fault abort 500 web-svc.{NS}"
USAGE_ABORT = "Usage: fault abort <http-status|grpc-code> <service> [<p>%] [for <duration>]"
NOT_A_NAME = "is not a valid name: use at most 63 lower-case letters, digits and '-', starting and ending"

# (command, exit code, the reply's first line or a telling part of it)
MALFORMED = [
    # DNS-1123 names: service, namespace, host
    pytest.param("fault abort 500 Web_Svc.emojivoto-istio", f"service 'Web_Svc' {NOT_A_NAME}", id="service"),
    pytest.param(
        "fault delay 3s -web-svc -n emojivoto-istio", f"service '-web-svc' {NOT_A_NAME}", id="service-dash"
    ),
    pytest.param(
        "fault abort 500 web-svc -n Emojivoto", f"namespace 'Emojivoto' {NOT_A_NAME}", id="namespace"
    ),
    pytest.param(
        "fault abort 500 web-svc.emojivoto_istio", f"namespace 'emojivoto_istio' {NOT_A_NAME}", id="ns-dot"
    ),
    pytest.param("inject " + "n" * 64, f"namespace '{'n' * 64}' {NOT_A_NAME}", id="namespace-too-long"),
    pytest.param(
        f"expose web-svc.{NS} host=Emoji_istio.test.net",
        "host 'Emoji_istio.test.net' is not a valid DNS name: use lower-case letters, digits, '-' and '.'",
        id="host",
    ),
    pytest.param(
        f"expose web-svc.{NS} host=http://emoji-istio.test.net",
        "host 'http://emoji-istio.test.net' is not a valid DNS name",
        id="host-with-scheme",
    ),
    pytest.param(
        "unexpose emoji-istio.test.net.",
        "host 'emoji-istio.test.net.' is not a valid DNS name",
        id="unexpose-host",
    ),
    # 0 < p ≤ 100
    pytest.param(f"{ABORT} 0%", "percentage '0%' must be more than 0% and at most 100%", id="p-zero"),
    pytest.param(
        f"{ABORT} 100.5%", "percentage '100.5%' must be more than 0% and at most 100%", id="p-above-100"
    ),
    pytest.param(f"{ABORT} -5%", "percentage '-5%' must be more than 0% and at most 100%", id="p-negative"),
    pytest.param(f"{ABORT} half%", "percentage 'half%' is not a number like 50%", id="p-not-a-number"),
    pytest.param(f"{ABORT} 10% 20%", "give one percentage", id="p-twice"),
    # HTTP status 200–599, gRPC code names
    pytest.param(
        f"fault abort 199 web-svc.{NS}", "HTTP status must be between 200 and 599, got 199", id="http-199"
    ),
    pytest.param(
        f"fault abort 600 web-svc.{NS}", "HTTP status must be between 200 and 599, got 600", id="http-600"
    ),
    pytest.param(
        f"fault abort UNAVAILABLE_NOW web-svc.{NS}",
        "gRPC status 'UNAVAILABLE_NOW' is not a gRPC status code name; use one of OK, CANCELLED, UNKNOWN,",
        id="grpc-code",
    ),
    # delay from 1 ms up to the policy's maximum (5m by default)
    pytest.param(f"fault delay 0ms web-svc.{NS}", "delay '0ms' must be longer than zero", id="delay-zero"),
    pytest.param(
        f"fault delay 0.5ms web-svc.{NS}", "delay must be at least 1ms, got 0.5ms", id="delay-below-1ms"
    ),
    pytest.param(
        f"fault delay 1.5ms web-svc.{NS}",
        "delay 1.5ms is finer than Istio allows; use whole milliseconds",
        id="delay-sub-ms",
    ),
    pytest.param(
        f"fault delay 5m1s web-svc.{NS}",
        "delay 5m1s is longer than the allowed maximum of 5m",
        id="delay-above-policy",
    ),
    pytest.param(
        f"fault delay 3 web-svc.{NS}",
        "delay '3' is not a duration like 500ms, 3s, 10m or 1h30m",
        id="delay-unitless",
    ),
    pytest.param(f"{ABORT} for 0s", "fault duration '0s' must be longer than zero", id="duration-zero"),
    pytest.param(f"{ABORT} for", "`for` needs a duration after it, e.g. for 10m", id="duration-missing"),
    pytest.param(f"{ABORT} for 10m for 20m", "give one `for <duration>`", id="duration-twice"),
    # unknown verb, action, option, flag; malformed quotes
    pytest.param(
        "chaos web-svc", "unknown command 'chaos'. Commands: help, status, use, install,", id="verb"
    ),
    pytest.param(
        "fault break web-svc",
        "unknown fault action 'break': use delay, abort, list, extend or clear",
        id="action",
    ),
    pytest.param(f"{ABORT} colour=red", "unknown option colour=; known options: header", id="option"),
    pytest.param(
        f"{ABORT} header=x-user", "header=x-user must look like header=<name>:<value>", id="header-form"
    ),
    pytest.param(f"inject {NS} --now", "unknown flag --now; known flags: --restart", id="flag"),
    pytest.param("install --yes", "unknown flag --yes; known flags: --dry-run, --force", id="install-flag"),
    pytest.param(
        "install profile=huge", "unknown Istio profile 'huge': choose one of demo, default,", id="profile"
    ),
    pytest.param(
        "fault abort 500 'web-svc",
        "cannot read the command: No closing quotation (check the quotes)",
        id="quote",
    ),
    pytest.param(
        f"{ABORT} -n other", f"web-svc.{NS} names namespace {NS} but -n says other", id="two-namespaces"
    ),
    pytest.param(
        "fault extend web-svc 5m", "'web-svc' is not an experiment id like exp-7f3a", id="experiment-id"
    ),
    pytest.param(
        f"expose web-svc.{NS} host=a.test.net port=99999",
        "port '99999' must be a number from 1 to 65535",
        id="port",
    ),
    pytest.param("dashboard graphite", "unknown dashboard 'graphite'", id="dashboard"),
    pytest.param("help chaos", "unknown verb 'chaos'; verbs: help, status, use,", id="help-verb"),
    pytest.param("audit colour=red", "unknown filter 'colour'", id="audit-filter"),
    # missing arguments
    pytest.param("fault", "say what to do: delay, abort, list, extend or clear", id="fault"),
    pytest.param(
        "fault abort", "fault abort needs an HTTP status like 500 or a gRPC code and a service", id="abort"
    ),
    pytest.param(
        "fault abort 500",
        "fault abort needs an HTTP status like 500 or a gRPC code and a service; only '500' was given",
        id="abort-service",
    ),
    pytest.param(
        "fault delay 3s",
        "fault delay needs a delay like 3s and a service; only '3s' was given",
        id="delay-service",
    ),
    # the offending word named, the nearest verb, action, option or flag suggested
    pytest.param(
        f"fault abort 500 50 web-svc.{NS}", "'50' looks like a percentage: write 50%", id="forgotten-%"
    ),
    pytest.param(
        f"fault delay 3s web-svc.{NS} foo",
        f"unexpected word 'foo' after the service web-svc.{NS} — did you mean `for`?",
        id="extra-word",
    ),
    pytest.param(
        f"fault delay 3s web-svc.{NS} 50% now",
        f"unexpected word 'now' after the service web-svc.{NS}: after the service only a percentage (50%), "
        "`for <duration>` and header=<name>:<value> may follow",
        id="extra-word-no-suggestion",
    ),
    pytest.param(
        f"mtls disable {NS}",
        "'disable' is not an mTLS mode: set one with `mtls strict|permissive <namespace>`, "
        "or show one namespace with `mtls <namespace>`",
        id="mtls-mode",
    ),
    pytest.param(
        f"mtls strickt {NS}", "'strickt' is not an mTLS mode — did you mean `strict`?", id="mtls-typo"
    ),
    pytest.param("staus", "unknown command 'staus' — did you mean `status`? (try `/mesh help`)", id="typo"),
    pytest.param(
        f"fault dealy 3s web-svc.{NS}",
        "unknown fault action 'dealy' — did you mean `delay`?",
        id="action-typo",
    ),
    pytest.param(
        f"expose web-svc.{NS} hots=a.test.net",
        "unknown option hots= — did you mean `host=`?",
        id="option-typo",
    ),
    pytest.param(
        f"inject {NS} --restrat", "unknown flag --restrat — did you mean `--restart`?", id="flag-typo"
    ),
    pytest.param("fault extend exp-1a2b", "fault extend needs an experiment id and a duration", id="extend"),
    pytest.param("fault clear", "fault clear needs one experiment id, one service, or `all`", id="clear"),
    pytest.param("inject", "name exactly one namespace", id="inject"),
    pytest.param("uninject", "name exactly one namespace", id="uninject"),
    pytest.param("expose", "name exactly one service", id="expose"),
    pytest.param(
        "expose web-svc", "host=<fqdn> is required, e.g. host=emoji-istio.test.net", id="expose-host"
    ),
    pytest.param("unexpose", "name exactly one host", id="unexpose"),
    pytest.param("mtls strict", "mtls strict needs exactly one namespace", id="mtls"),
    pytest.param("use", "name exactly one namespace", id="use"),
    pytest.param("fault list a b", "fault list takes at most a namespace", id="list-extra"),
    pytest.param("status a b", "status shows one namespace or all", id="status-extra"),
    pytest.param("uninstall now", "unexpected now", id="uninstall-extra"),
]

# Well-formed but not allowed: exit code 1, no usage line.
REFUSED = [
    pytest.param(
        "fault abort 500 kube-dns.kube-system",
        "namespace kube-system is protected by policy: faults are not allowed there",
        id="kube-system",
    ),
    pytest.param(
        "fault delay 3s istiod.istio-system",
        "namespace istio-system is protected by policy: faults are not allowed there",
        id="istio-system",
    ),
    pytest.param(f"{ABORT} for 1h1m", "a fault may last at most 1h by policy; 1h1m asked", id="duration-cap"),
    pytest.param(
        f"fault abort 500 web.{NS}",
        f"there is no service web in namespace {NS}; services there: emoji-svc, voting-svc, web-svc",
        id="no-such-service",
    ),
    pytest.param(
        "fault abort 500 web-svc.emojivoto",
        "there is no service web-svc in namespace emojivoto; it has no services (does it exist?)",
        id="no-such-namespace",
    ),
    pytest.param(
        f"expose web.{NS} host=emoji-istio.test.net",
        f"there is no service web in namespace {NS}; services there: emoji-svc, voting-svc, web-svc",
        id="expose-no-such-service",
    ),
    pytest.param(
        f"use {NS} cluster=prod", "unknown cluster prod; configured clusters: default", id="use-cluster"
    ),
    pytest.param("inject emojivoto", "emojivoto", id="inject-missing-namespace"),
    pytest.param("fault extend exp-1a2b 5m", "there is no experiment exp-1a2b", id="extend-unknown"),
    pytest.param("fault clear exp-1a2b", "there is no experiment exp-1a2b", id="clear-unknown"),
    pytest.param(f"fault clear web-svc.{NS}", f"no active faults on web-svc.{NS}", id="clear-nothing"),
]


def assert_refused(meshbot: Meshbot, command: str, code: int, message: str, **kwargs: Any) -> Result:
    """The command is refused with `message` and exit `code`, changes nothing, and is audited."""
    before = meshbot.virtual_services()
    writes = len(meshbot.writes())
    result = meshbot.run(command, **kwargs)
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    assert message in result.stderr
    assert meshbot.writes()[writes:] == []
    assert meshbot.virtual_services() == before
    event = meshbot.last_event()
    assert (event.command, event.outcome) == (command, "refused")
    assert event.message == result.stderr.splitlines()[0]
    return result


@pytest.mark.parametrize(("command", "message"), MALFORMED)
def test_malformed_commands_exit_2_and_change_nothing(meshbot: Meshbot, command: str, message: str) -> None:
    result = assert_refused(meshbot, command, 2, message)
    assert meshbot.experiments() == {}
    try:
        verb = shlex.split(command)[0]
    except ValueError:
        verb = ""
    if verb in VERBS:
        # The form of the command that was attempted follows the message.
        assert f"\nUsage: {verb}" in result.stderr  # caught before anything was recorded as an experiment


@pytest.mark.parametrize(("command", "message"), REFUSED)
def test_refused_commands_exit_1_and_change_nothing(meshbot: Meshbot, command: str, message: str) -> None:
    assert_refused(meshbot, command, 1, message)
    assert [e for e in meshbot.experiments().values() if e.state == "active"] == []


def test_the_audit_row_names_what_the_refused_command_was(meshbot: Meshbot) -> None:
    meshbot.run("chaos web-svc")
    assert meshbot.last_event().verb == "chaos"
    meshbot.run("fault abort 500 'web-svc")
    assert meshbot.last_event().verb == ""  # not even a verb could be read
    meshbot.run(f"fault abort 600 web-svc.{NS}", channel="C-chaos")
    event = meshbot.last_event()
    assert (event.verb, event.channel, event.actor_user_id, event.source) == (
        "fault",
        "C-chaos",
        "cli:alice",
        "cli",
    )


def test_a_refused_fault_is_audited_with_what_it_aimed_at(meshbot: Meshbot) -> None:
    """An auditor asking who went after kube-system, or web-svc, finds the refused attempts too."""
    meshbot.set_policy({"faults": {"max_concurrent_per_namespace": 1}})
    meshbot.inject_fault(f"fault delay 3s emoji-svc.{NS}")
    for command in (
        "fault abort 500 kube-dns.kube-system",
        f"fault abort 500 web.{NS}",
        f"fault abort 500 web-svc.{NS} for 2h",
        f"fault abort 500 web-svc.{NS}",  # one active fault is the maximum
    ):
        assert meshbot.run(command).exit_code == 1
    refused = [(e.namespace, e.service) for e in meshbot.audit_events() if e.outcome == "refused"]
    assert refused == [("kube-system", "kube-dns"), (NS, "web"), (NS, "web-svc"), (NS, "web-svc")]

    result = meshbot.cli("audit", "namespace=kube-system", "--format", "json")
    assert [(e["command"], e["outcome"]) for e in json.loads(result.stdout)] == [
        ("fault abort 500 kube-dns.kube-system", "refused")
    ]


def test_limits_at_their_bounds_are_accepted(meshbot: Meshbot) -> None:
    meshbot.inject_fault(f"fault delay 1ms web-svc.{NS} 0.1%")
    meshbot.inject_fault(f"fault delay 5m emoji-svc.{NS} 100% for 1h")
    meshbot.inject_fault(f"fault abort 200 voting-svc.{NS}")
    meshbot.inject_fault(f"fault abort 599 voting-svc.{NS}")
    grpc = meshbot.inject_fault(f"fault abort deadline_exceeded voting-svc.{NS} 5%")
    faults = {
        str(route["name"]): route["fault"]
        for vs in meshbot.virtual_services().values()
        for route in vs["spec"]["http"]
        if "fault" in route
    }
    assert sorted(faults.values(), key=str) == sorted(
        [
            {"delay": {"fixedDelay": "0.001s", "percentage": {"value": 0.1}}},
            {"delay": {"fixedDelay": "300s", "percentage": {"value": 100}}},
            {"abort": {"httpStatus": 200, "percentage": {"value": 100}}},
            {"abort": {"httpStatus": 599, "percentage": {"value": 100}}},
            {"abort": {"grpcStatus": "DEADLINE_EXCEEDED", "percentage": {"value": 5}}},
        ],
        key=str,
    )
    assert meshbot.experiment(grpc).parameters["grpc_status"] == "DEADLINE_EXCEEDED"


def test_fault_duration_defaults_to_ten_minutes_and_is_capped_by_the_policy(meshbot: Meshbot) -> None:
    default = meshbot.inject_fault(f"fault delay 3s web-svc.{NS}")
    longest = meshbot.inject_fault(f"fault delay 3s emoji-svc.{NS} for 1h")
    assert meshbot.experiment(default).duration_seconds == 10 * 60
    assert meshbot.experiment(longest).duration_seconds == 60 * 60

    meshbot.set_policy({"faults": {"default_duration": "2m", "max_duration": "5m"}})
    shorter = meshbot.inject_fault(f"fault delay 3s voting-svc.{NS}")
    assert meshbot.experiment(shorter).duration_seconds == 2 * 60
    assert_refused(meshbot, f"{ABORT} for 6m", 1, "a fault may last at most 5m by policy; 6m asked")


def test_the_policy_sets_the_maximum_delay_and_percentage(meshbot: Meshbot) -> None:
    meshbot.set_policy({"faults": {"max_delay": "30s", "max_percentage": 50}})
    meshbot.inject_fault(f"fault delay 30s web-svc.{NS} 50%")
    assert_refused(
        meshbot,
        f"fault delay 30001ms emoji-svc.{NS} 10%",
        2,
        "delay 30.001s is longer than the allowed maximum of 30s",
    )
    assert_refused(meshbot, f"{ABORT} 50.5%", 1, "50.5% is above the policy's maximum of 50%")


def test_concurrent_experiments_per_namespace_are_capped(meshbot: Meshbot) -> None:
    meshbot.set_policy({"faults": {"max_concurrent_per_namespace": 2}})
    first = meshbot.inject_fault(f"fault delay 3s web-svc.{NS}")
    meshbot.inject_fault(f"fault abort 503 emoji-svc.{NS}")

    assert_refused(
        meshbot,
        f"fault abort 500 voting-svc.{NS}",
        1,
        f"{NS} already has 2 active faults, the policy's maximum; clear one first (`fault list`)",
    )
    assert len(meshbot.experiments()) == 2

    meshbot.ok(f"fault clear {first}")
    meshbot.inject_fault(f"fault abort 500 voting-svc.{NS}")


def test_protected_namespaces_come_from_the_policy(meshbot: Meshbot) -> None:
    meshbot.set_policy({"protected_namespaces": [NS]})
    assert_refused(meshbot, ABORT, 1, f"namespace {NS} is protected by policy: faults are not allowed there")
    # Protection is about faults: reading the namespace is still fine.
    assert "mTLS in emojivoto-istio: PERMISSIVE" in meshbot.ok(f"mtls {NS}")


def test_a_namespace_is_needed_when_the_channel_has_none(meshbot: Meshbot) -> None:
    assert_refused(
        meshbot,
        "fault abort 500 web-svc",
        1,
        "no namespace given and this channel has no default: name one (`web-svc.emojivoto-istio` or "
        "`-n emojivoto-istio`) or bind one with `use emojivoto-istio`",
        channel="C-new",
    )
    # The policy's default namespace applies where no channel is bound.
    meshbot.set_policy({"default_namespace": NS})
    experiment_id = meshbot.inject_fault("fault abort 500 web-svc", channel="C-new")
    assert meshbot.experiment(experiment_id).namespace == NS


def test_use_a_missing_namespace_binds_nothing(meshbot: Meshbot) -> None:
    assert_refused(meshbot, "use emojivoto", 1, "namespace emojivoto does not exist", channel="C-chaos")
    # The channel still has no default.
    assert_refused(meshbot, "fault abort 500 web-svc", 1, "this channel has no default", channel="C-chaos")


def test_verbs_in_any_case_and_a_services_fqdn_are_accepted(meshbot: Meshbot) -> None:
    experiment_id = meshbot.inject_fault(f"Fault DELAY 3s web-svc.{NS}.svc.cluster.local for 1m")
    assert meshbot.experiment(experiment_id).service == "web-svc"
    assert meshbot.experiment(experiment_id).namespace == NS
    assert experiment_id in meshbot.ok(f"FAULT list {NS}")
    assert meshbot.last_event().verb == "fault"
    meshbot.inject_fault(f"fault abort 503 emoji-svc.{NS}.svc")
