"""The /mesh command language without a cluster: handlers/parse.py's vocabulary, and what each
verb's parse_args makes of the words a person types (or the usage error it answers with)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from core.durations import human_duration
from handlers import (
    VERBS,
    audit,
    dashboard,
    expose,
    fault,
    help,
    inject,
    install,
    mtls,
    parse,
    status,
    unexpose,
    uninject,
    uninstall,
    use,
)
from handlers.errors import UsageError
from handlers.parse import ParseError, ServiceRef

# ------------------------------------------------------------------ words and values


def test_words_split_like_a_shell_without_running_anything() -> None:
    assert parse.words("fault abort 500 web-svc") == ["fault", "abort", "500", "web-svc"]
    assert parse.words("  fault   list  ") == ["fault", "list"]
    assert parse.words("audit 'text=fault abort' \"verb=fault\"") == [
        "audit",
        "text=fault abort",
        "verb=fault",
    ]
    assert parse.words("status $(rm -rf /) `id`; ls") == ["status", "$(rm", "-rf", "/)", "`id`;", "ls"]
    assert parse.words("") == []


@pytest.mark.parametrize("text", ["fault abort 'web-svc", 'expose "web-svc host=a.test', "status \\"])
def test_unbalanced_quotes_are_a_parse_error(text: str) -> None:
    with pytest.raises(ParseError, match=r"^cannot read the command: .* \(check the quotes\)$"):
        parse.words(text)


@pytest.mark.parametrize(
    ("text", "value"), [("50%", 50.0), ("50", 50.0), ("0.5%", 0.5), ("100%", 100.0), ("0.001%", 0.001)]
)
def test_percentages_in_range(text: str, value: float) -> None:
    assert parse.percentage(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0%", "percentage '0%' must be more than 0% and at most 100%"),
        ("100.01%", "percentage '100.01%' must be more than 0% and at most 100%"),
        ("-5%", "percentage '-5%' must be more than 0% and at most 100%"),
        ("nan%", "percentage 'nan%' must be more than 0% and at most 100%"),
        ("half%", "percentage 'half%' is not a number like 50%"),
    ],
)
def test_percentages_out_of_range_or_not_numbers(text: str, message: str) -> None:
    with pytest.raises(ParseError) as error:
        parse.percentage(text)
    assert str(error.value) == message


def test_a_word_ending_in_percent_is_meant_as_a_percentage() -> None:
    assert [w for w in ("50%", "-5%", "half%", "%", "50", "web-svc") if parse.is_percentage(w)] == [
        "50%",
        "-5%",
        "half%",
    ]


@pytest.mark.parametrize("text", ["web-svc", "a", "0", "emojivoto-istio", "a" * 63, "1-24-2"])
def test_dns1123_labels(text: str) -> None:
    assert parse.name(text, what="service") == text


@pytest.mark.parametrize("text", ["", "Web-svc", "web_svc", "-web", "web-", "a" * 64, "web.svc", "wéb"])
def test_not_dns1123_labels(text: str) -> None:
    with pytest.raises(ParseError) as error:
        parse.name(text, what="namespace")
    assert str(error.value) == (
        f"namespace {text!r} is not a valid name: use at most 63 lower-case letters, digits and '-', "
        "starting and ending with a letter or digit"
    )


@pytest.mark.parametrize(
    "text", ["emoji-istio.test.net", "localhost", "a.b.c", ".".join(["a" * 63] * 3) + "." + "b" * 61]
)
def test_hostnames(text: str) -> None:
    assert parse.hostname(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "Emoji.test.net",
        "emoji.test.net.",
        "http://emoji.test.net",
        "emoji.test.net:30080",
        "*.test.net",
        "emoji..net",
        "-emoji.net",
        ".".join(["a" * 63] * 4),  # 255 characters
    ],
)
def test_not_hostnames(text: str) -> None:
    with pytest.raises(
        ParseError, match=re.escape("is not a valid DNS name: use lower-case letters, digits, '-' and '.'")
    ):
        parse.hostname(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3s", 3), ("500ms", 0.5), ("10m", 600), ("1h30m", 5400), ("2d", 172800), ("1.5s", 1.5), ("1ms", 0.001)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse.duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3", "delay '3' is not a duration like 500ms, 3s, 10m or 1h30m"),
        ("", "delay '' is not a duration like 500ms, 3s, 10m or 1h30m"),
        ("-3s", "delay '-3s' is not a duration like 500ms, 3s, 10m or 1h30m"),
        ("3 s", "delay '3 s' is not a duration like 500ms, 3s, 10m or 1h30m"),
        ("3sec", "delay '3sec' is not a duration like 500ms, 3s, 10m or 1h30m"),
        ("0s", "delay '0s' must be longer than zero"),
        ("0h0m", "delay '0h0m' must be longer than zero"),
    ],
)
def test_not_durations(text: str, message: str) -> None:
    with pytest.raises(ParseError) as error:
        parse.duration(text, what="delay")
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (3, "3s"),
        (1.5, "1.5s"),
        (0.25, "250ms"),
        (600, "10m"),
        (5400, "1h30m"),
        (3605, "1h5s"),
        (0.001, "1ms"),
    ],
)
def test_durations_are_written_as_typed(seconds: float, text: str) -> None:
    assert human_duration(timedelta(seconds=seconds)) == text
    assert parse.duration(text) == timedelta(seconds=seconds)


def test_options_take_known_keys_and_leave_the_rest() -> None:
    found, rest = parse.options(
        ["web-svc", "host=a.test", "gateway=x", "header=x-user:a=b", "a-b=c"], {"host", "gateway", "header"}
    )
    assert found == {"host": "a.test", "gateway": "x", "header": "x-user:a=b"}
    assert rest == ["web-svc", "a-b=c"]  # not an identifier: not an option
    with pytest.raises(ParseError, match=r"^unknown option colour=; known options: gateway, host$"):
        parse.options(["colour=red"], {"host", "gateway"})
    with pytest.raises(ParseError, match=r"^unknown option colour=; known options: none$"):
        parse.options(["colour=red"], set())
    with pytest.raises(ParseError, match=r"^unknown option hots= — did you mean `host=`\?$"):
        parse.options(["hots=a.test"], {"host", "gateway"})
    with pytest.raises(ParseError, match=r"^option host= given twice$"):
        parse.options(["host=a.test", "host=b.test"], {"host"})


def test_flags_take_known_flags_and_leave_the_rest() -> None:
    assert parse.flags(["ns", "--restart"], {"--restart"}) == ({"--restart"}, ["ns"])
    assert parse.flags(["-n", "ns"], {"--restart"}) == (set(), ["-n", "ns"])
    with pytest.raises(ParseError, match=r"^unknown flag --now; known flags: --restart$"):
        parse.flags(["--now"], {"--restart"})
    with pytest.raises(ParseError, match=r"^unknown flag --restrat — did you mean `--restart`\?$"):
        parse.flags(["--restrat"], {"--restart"})


def test_service_references() -> None:
    assert parse.service_ref(["web-svc", "-n", "ns1", "50%"]) == (ServiceRef("", "ns1"), ["web-svc", "50%"])
    assert parse.service_ref(["--namespace", "ns1"]) == (ServiceRef("", "ns1"), [])
    assert parse.service_ref(["web-svc"]) == (None, ["web-svc"])
    with pytest.raises(ParseError, match=r"^-n needs a namespace after it$"):
        parse.service_ref(["web-svc", "-n"])
    with pytest.raises(ParseError, match="namespace 'NS' is not a valid name"):
        parse.service_ref(["-n", "NS"])

    assert parse.service_word("web-svc", None) == ServiceRef("web-svc", None)
    assert parse.service_word("web-svc.ns1", None) == ServiceRef("web-svc", "ns1")
    assert parse.service_word("web-svc", ServiceRef("", "ns1")) == ServiceRef("web-svc", "ns1")
    assert parse.service_word("web-svc.ns1", ServiceRef("", "ns1")) == ServiceRef("web-svc", "ns1")
    with pytest.raises(ParseError, match=r"^web-svc.ns1 names namespace ns1 but -n says ns2$"):
        parse.service_word("web-svc.ns1", ServiceRef("", "ns2"))
    with pytest.raises(ParseError, match=r"namespace 'a\.b' is not a valid name"):
        parse.service_word("web-svc.a.b", None)
    # What Kubernetes DNS calls the service, pasted whole; a suffix alone is no namespace.
    assert parse.service_word("web-svc.ns1.svc.cluster.local", None) == ServiceRef("web-svc", "ns1")
    assert parse.service_word("web-svc.ns1.svc", None) == ServiceRef("web-svc", "ns1")
    with pytest.raises(ParseError, match=r"namespace 'svc\.cluster\.local' is not a valid name"):
        parse.service_word("web-svc.svc.cluster.local", None)


# ------------------------------------------------------------------ each verb's parse_args


SEED_WORKFLOW_VERBS = (
    "help",
    "status",
    "use",
    "install",
    "uninstall",
    "inject",
    "uninject",
    "expose",
    "unexpose",
    "fault",
    "mtls",
    "dashboard",
    "audit",
)


def test_every_verb_is_registered_under_its_name() -> None:
    assert set(SEED_WORKFLOW_VERBS) <= set(VERBS)
    for verb, module in VERBS.items():
        assert verb == module.VERB
        assert module.USAGE.startswith(verb) and module.HELP


def ref(service: str, namespace: str | None = None) -> ServiceRef:
    return ServiceRef(service, namespace)


@pytest.mark.parametrize(
    ("words", "command"),
    [
        (
            "abort 500 web-svc 50%",
            fault.StartCommand("abort", ref("web-svc"), 50.0, None, http_status=500),
        ),
        (
            "abort unavailable web-svc.ns1 for 30m",
            fault.StartCommand(
                "abort", ref("web-svc", "ns1"), 100.0, timedelta(minutes=30), grpc_status="unavailable"
            ),
        ),
        (
            "delay 3s -n ns1 web-svc 12.5% header=x-user:alice",
            fault.StartCommand(
                "delay",
                ref("web-svc", "ns1"),
                12.5,
                None,
                delay=timedelta(seconds=3),
                headers={"x-user": "alice"},
            ),
        ),
        (
            "delay 1h web-svc",
            fault.StartCommand("delay", ref("web-svc"), 100.0, None, delay=timedelta(hours=1)),
        ),
        ("list", fault.ListCommand(None)),
        ("list ns1", fault.ListCommand("ns1")),
        ("list -n ns1", fault.ListCommand("ns1")),
        ("extend exp-7f3a 10m", fault.ExtendCommand("exp-7f3a", timedelta(minutes=10))),
        ("clear exp-7f3a", fault.ClearCommand(experiment_id="exp-7f3a")),
        ("clear all", fault.ClearCommand(everything=True)),
        ("clear web-svc -n ns1", fault.ClearCommand(service=ref("web-svc", "ns1"))),
    ],
)
def test_fault_commands(words: str, command: Any) -> None:
    assert fault.parse_args(words.split()) == command


@pytest.mark.parametrize(
    ("words", "message", "usage"),
    [
        ("", "say what to do: delay, abort, list, extend or clear", fault.USAGE),
        (
            "break web-svc",
            "unknown fault action 'break': use delay, abort, list, extend or clear",
            fault.USAGE,
        ),
        ("abort 500", "fault abort needs an HTTP status like 500 or a gRPC code", fault.FORMS["abort"]),
        (
            "abort 500 web-svc extra",
            "unexpected word 'extra' after the service web-svc",
            fault.FORMS["abort"],
        ),
        ("abort 500 50 web-svc", "'50' looks like a percentage: write 50%", fault.FORMS["abort"]),
        ("delay web-svc", "fault delay needs a delay like 3s and a service", fault.FORMS["delay"]),
        (
            "DELAY 3s web-svc fro 1m",
            "unexpected word 'fro' after the service web-svc — did you mean `for`?",
            fault.FORMS["delay"],
        ),
        ("delay 3 web-svc", "delay '3' is not a duration like 500ms, 3s, 10m or 1h30m", fault.FORMS["delay"]),
        ("delay 3s web-svc for", "`for` needs a duration after it, e.g. for 10m", fault.FORMS["delay"]),
        ("delay 3s web-svc for 3", "fault duration '3' is not a duration", fault.FORMS["delay"]),
        (
            "abort 500 web-svc 0%",
            "percentage '0%' must be more than 0% and at most 100%",
            fault.FORMS["abort"],
        ),
        ("abort 500 web-svc 1% 2%", "give one percentage", fault.FORMS["abort"]),
        ("abort 500 web-svc header=x", "header=x must look like header=<name>:<value>", fault.FORMS["abort"]),
        (
            "abort 500 web-svc header=:v",
            "header=:v must look like header=<name>:<value>",
            fault.FORMS["abort"],
        ),
        (
            "abort 500 web-svc colour=red",
            "unknown option colour=; known options: header",
            fault.FORMS["abort"],
        ),
        ("abort 500 Web", "service 'Web' is not a valid name", fault.FORMS["abort"]),
        ("list a b", "fault list takes at most a namespace", fault.FORMS["list"]),
        ("list A", "namespace 'A' is not a valid name", fault.FORMS["list"]),
        ("extend exp-7f3a", "fault extend needs an experiment id and a duration", fault.FORMS["extend"]),
        ("extend 7f3a 10m", "'7f3a' is not an experiment id like exp-7f3a", fault.FORMS["extend"]),
        ("extend exp-7f3a ten", "extension 'ten' is not a duration", fault.FORMS["extend"]),
        ("clear", "fault clear needs one experiment id, one service, or `all`", fault.FORMS["clear"]),
        ("clear a b", "fault clear needs one experiment id, one service, or `all`", fault.FORMS["clear"]),
        ("clear exp-", "'exp-' is not an experiment id like exp-7f3a", fault.FORMS["clear"]),
    ],
)
def test_fault_usage_errors_show_the_form_attempted(words: str, message: str, usage: str) -> None:
    with pytest.raises(UsageError) as error:
        fault.parse_args(words.split())
    assert error.value.message.startswith(message)
    assert error.value.usage == usage
    assert str(error.value) == f"{error.value.message}\nUsage: {usage}"


# A few words per verb → what it parses to; None: a usage error with the verb's USAGE.
VERB_CASES: list[tuple[Any, str, Any]] = [
    (help, "", help.HelpCommand(None)),
    (help, "fault", help.HelpCommand("fault")),
    (help, "chaos", None),
    (help, "fault expose", None),
    (status, "", status.StatusCommand(None)),
    (status, "ns1", status.StatusCommand("ns1")),
    (status, "NS", None),
    (status, "a b", None),
    (use, "ns1", use.UseCommand("ns1", None)),
    (use, "ns1 cluster=prod", use.UseCommand("ns1", "prod")),
    (use, "", None),
    (use, "a b", None),
    (use, "ns1 cluster=Prod", None),
    (install, "", install.InstallCommand("demo", None, False, False)),
    (
        install,
        "profile=minimal revision=1-24-2 --dry-run --force",
        install.InstallCommand("minimal", "1-24-2", True, True),
    ),
    (install, "profile=huge", None),
    (install, "revision=A", None),
    (install, "--yes", None),
    (install, "now", None),
    (uninstall, "", uninstall.UninstallCommand(None, False)),
    (uninstall, "revision=canary --dry-run", uninstall.UninstallCommand("canary", True)),
    (uninstall, "--force", None),
    (inject, "ns1", inject.SidecarCommand("ns1", True, False)),
    (inject, "--restart ns1", inject.SidecarCommand("ns1", True, True)),
    (inject, "", None),
    (inject, "ns1 ns2", None),
    (inject, "ns1 --now", None),
    (uninject, "ns1 --restart", inject.SidecarCommand("ns1", False, True)),
    (uninject, "", None),
    (
        expose,
        "web-svc.ns1 host=emoji-istio.test.net gateway=emojivoto",
        expose.ExposeCommand(ref("web-svc", "ns1"), "emoji-istio.test.net", None, "emojivoto"),
    ),
    # The Gateway named as the write-up names it is `emojivoto-gateway`, not `emojivoto-gateway-gateway`.
    (
        expose,
        "web-svc.ns1 host=emoji-istio.test.net gateway=emojivoto-gateway",
        expose.ExposeCommand(ref("web-svc", "ns1"), "emoji-istio.test.net", None, "emojivoto"),
    ),
    (expose, "web-svc host=a.test port=8080", expose.ExposeCommand(ref("web-svc"), "a.test", 8080, None)),
    (expose, "web-svc", None),
    (expose, "host=a.test", None),
    (expose, "web-svc host=A.test", None),
    (expose, "web-svc host=a.test port=0", None),
    (expose, "web-svc host=a.test port=http", None),
    (expose, "web-svc host=a.test gateway=Emojivoto", None),
    (unexpose, "emoji-istio.test.net", unexpose.UnexposeCommand("emoji-istio.test.net")),
    (unexpose, "", None),
    (unexpose, "emoji-istio.test.net:30080", None),
    (mtls, "", mtls.MtlsCommand(None, None)),
    (mtls, "ns1", mtls.MtlsCommand("ns1", None)),
    (mtls, "strict ns1", mtls.MtlsCommand("ns1", "STRICT")),
    (mtls, "PERMISSIVE ns1", mtls.MtlsCommand("ns1", "PERMISSIVE")),
    (mtls, "strict", None),
    (mtls, "disable ns1", None),
    (dashboard, "", dashboard.DashboardCommand(None)),
    (dashboard, "kiali", dashboard.DashboardCommand("kiali")),
    (dashboard, "graphite", None),
    (dashboard, "kiali grafana", None),
    # audit reads its filters when it runs (relative times need the clock)
    (audit, "service=web-svc since=24h", audit.AuditCommand(("service=web-svc", "since=24h"))),
]


@pytest.mark.parametrize(
    ("module", "words", "command"),
    VERB_CASES,
    ids=[f"{m.VERB}:{w or '-'}" for m, w, _ in VERB_CASES],
)
def test_verb_parse_args(module: Any, words: str, command: Any) -> None:
    if command is not None:
        assert module.parse_args(words.split()) == command
        return
    with pytest.raises(UsageError) as error:
        module.parse_args(words.split())
    assert error.value.usage == module.USAGE
    assert error.value.message


# ------------------------------------------------------------------ odd input: whole matches, ASCII, bounds


@pytest.mark.parametrize("text", ["web-svc\n", "web-svc\r\n", "\nweb-svc", "web-svc "])
def test_names_match_whole_words_only(text: str) -> None:
    with pytest.raises(ParseError, match="is not a valid name"):
        parse.name(text, what="service")
    with pytest.raises(ParseError, match="is not a valid DNS name"):
        parse.hostname(text.replace("web-svc", "a.test.net"))
    with pytest.raises(ParseError, match="is not a valid name"):
        parse.service_ref(["-n", text.replace("web-svc", "kube-system")])


@pytest.mark.parametrize("text", ["²%", "５０%", "١٠%", "1_0%", "1e1%", "0x10%", "inf%"])
def test_percentages_are_ascii_decimals(text: str) -> None:
    with pytest.raises(ParseError, match="is not a number like 50%"):
        parse.percentage(text)


@pytest.mark.parametrize("text", ["⁸⁰", "８０", "0x50", "-1", "", "9" * 5000, "65536"])
def test_whole_numbers_are_ascii_and_in_range(text: str) -> None:
    with pytest.raises(ParseError, match="must be a number from 1 to 65535"):
        parse.whole_number(text, what="port", low=1, high=65535)
    assert parse.whole_number("65535", what="port", low=1, high=65535) == 65535


@pytest.mark.parametrize("text", ["9999999999d", "731d", "1" * 400 + "s", "99999999999999999999h"])
def test_durations_are_bounded(text: str) -> None:
    with pytest.raises(ParseError, match=r"is too long: at most 730d \(two years\)"):
        parse.duration(text, what="fault duration")
    assert parse.duration("730d") == timedelta(days=730)
    with pytest.raises(ParseError, match="is too long: at most 7d"):
        parse.duration("8d", what="reminder lead", maximum=timedelta(days=7))


@pytest.mark.parametrize("text", ["²s", "５m", "1.5²s"])
def test_durations_are_ascii(text: str) -> None:
    with pytest.raises(ParseError, match="is not a duration"):
        parse.duration(text)


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (
            ["abort", "5" * 5000, "web-svc"],
            "HTTP status must be between 200 and 599, got a 5000-digit number",
        ),
        (["abort", "500", "web-svc", "header=x-user\n:a"], "is not a valid HTTP header name"),
        (["abort", "500", "web-svc", "header=x-user:a\nb"], "must be printable characters"),
        (["abort", "500", "web-svc", "header=x-user: a"], "without control characters or surrounding spaces"),
        (["abort", "500", "web-svc", "header=x-user:" + "a" * 1025], "at most 1024"),
        (["abort", "500", "web-svc", f"header={'x' * 129}:a"], "at most 128"),
        (["extend", "exp-1a2b\n", "5m"], "is not an experiment id"),
    ],
)
def test_fault_refuses_odd_numbers_and_headers(words: list[str], message: str) -> None:
    with pytest.raises(UsageError) as error:
        fault.parse_args(words)
    assert message in error.value.message
    assert "\n" not in error.value.message.replace("\\n", "")
