"""Odd input through `meshbot run`: numbers str.isdigit() takes but int() does not, durations and
ids too large for a date or a BIGINT, names and headers with a newline, caps a schedule would only
meet when it runs. Each is one refusal line, an exit code, nothing changed, and an audit row —
never a traceback."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.scenarios.conftest import NS, Meshbot
from tests.scenarios.test_validation import assert_refused

SCHEDULE = f'schedule "fault abort 500 web-svc.{NS} for 5m"'
CHANNEL = "C-chaos"

# (command, exit code, a telling part of the refusal)
ODD = [
    # str.isdigit() is true for these; int() and float() refuse or misread them
    pytest.param(
        f"fault abort ⁵⁰⁰ web-svc.{NS}",
        2,
        "gRPC status '⁵⁰⁰' is not a gRPC status code name",
        id="status-sup",
    ),
    pytest.param(
        f"fault abort {'5' * 4000} web-svc.{NS}",
        2,
        "HTTP status must be between 200 and 599",
        id="status-4000",
    ),
    pytest.param(f"fault abort 500 web-svc.{NS} ²%", 2, "percentage '²%' is not a number", id="p-sup"),
    pytest.param(f"fault abort 500 web-svc.{NS} ５０%", 2, "percentage '５０%' is not a number", id="p-wide"),
    pytest.param(f"fault abort 500 web-svc.{NS} 1e1%", 2, "percentage '1e1%' is not a number", id="p-exp"),
    pytest.param(f"fault delay ²s web-svc.{NS}", 2, "delay '²s' is not a duration", id="delay-sup"),
    pytest.param(
        f"expose web-svc.{NS} host=a.test.net port=⁸⁰",
        2,
        "port '⁸⁰' must be a number from 1 to 65535",
        id="port",
    ),
    pytest.param("audit limit=²", 2, "limit=² is not a whole number", id="audit-limit-sup"),
    pytest.param("audit before=²", 2, "before=² is not an event id", id="audit-before-sup"),
    # durations and ids beyond what a date or a BIGINT holds
    pytest.param(
        f"fault abort 500 web-svc.{NS} for 9999999999d",
        2,
        "fault duration '9999999999d' is too long: at most 730d",
        id="for-overflow",
    ),
    pytest.param(
        "fault extend exp-1a2b 9999999999d", 2, "extension '9999999999d' is too long", id="extend-overflow"
    ),
    pytest.param("audit since=99999999d", 2, "99999999d is too long: at most 3650d", id="since-overflow"),
    pytest.param("audit until=99999999w", 2, "99999999w is too long", id="until-overflow"),
    pytest.param(
        "audit since=0001-01-01T00:00+01:00", 2, "cannot read since=0001-01-01T00:00+01:00", id="since-year-1"
    ),
    pytest.param(f"audit before={2**63}", 2, f"before={2**63} is not an event id", id="before-2^63"),
    # 4000: long enough to overflow anything, short enough to be audited whole (4096 are kept).
    pytest.param(f"audit before={'9' * 4000}", 2, "is not an event id", id="before-4000-digits"),
    pytest.param(
        f"{SCHEDULE} at +1h remind=99999999d",
        2,
        "reminder lead '99999999d' is too long: at most 7d",
        id="remind",
    ),
    pytest.param(
        f"{SCHEDULE} at +99999999d", 2, "time from now '99999999d' is too long: at most 730d", id="at"
    ),
    pytest.param(f"{SCHEDULE} at +731d", 2, "time from now '731d' is too long: at most 730d", id="at-731d"),
    # full matches: `^…$` let a trailing newline through
    pytest.param(
        f'fault abort 500 "web-svc\n.{NS}"', 2, "service 'web-svc\\n' is not a valid name", id="svc-nl"
    ),
    pytest.param(
        'fault abort 500 web-svc -n "kube-system\n"',
        2,
        "namespace 'kube-system\\n' is not a valid name",
        id="ns-nl",
    ),
    pytest.param(
        f'expose web-svc.{NS} "host=a.test.net\n"',
        2,
        "host 'a.test.net\\n' is not a valid DNS name",
        id="host-nl",
    ),
    pytest.param(
        f'fault abort 500 web-svc.{NS} "header=x-user\n:alice"',
        2,
        "header name 'x-user\\n' is not a valid HTTP header name",
        id="header-name-nl",
    ),
    pytest.param(
        f'fault abort 500 web-svc.{NS} "header=x-user:alice\nx-admin: 1"',
        2,
        "value 'alice\\nx-admin: 1' must be printable characters without control characters",
        id="header-value-nl",
    ),
    pytest.param(
        f"fault abort 500 web-svc.{NS} header=x-user:{'a' * 2000}", 2, "at most 1024", id="header-value-long"
    ),
    pytest.param(
        f"fault abort 500 web-svc.{NS} header={'x' * 200}:a",
        2,
        "is not a valid HTTP header name",
        id="header-long",
    ),
    pytest.param('pause "sch-1a2b\n"', 2, "is not a schedule id", id="schedule-id-nl"),
]


@pytest.mark.parametrize(("command", "code", "message"), ODD)
def test_odd_input_is_one_refusal_and_an_audit_row(
    meshbot: Meshbot, command: str, code: int, message: str
) -> None:
    result = assert_refused(meshbot, command, code, message, channel=CHANNEL)
    assert "Traceback" not in result.output
    assert meshbot.experiments() == {}


# Well-formed, but the fault could only be refused when the schedule runs: refused when it is made.
SCHEDULE_CAPS = [
    pytest.param(
        f'schedule "fault abort 500 web-svc.{NS} 60%" at +1h',
        1,
        "60% is above the policy's maximum of 50%",
        id="p",
    ),
    pytest.param(
        f'schedule "fault delay 31s web-svc.{NS} 10%" at +1h',
        2,
        "delay 31s is longer than the allowed maximum of 30s",
        id="delay",
    ),
    pytest.param(
        f'schedule "fault abort 500 web-svc.{NS} 10% for 6m" at +1h',
        1,
        "a fault may last at most 5m by policy; 6m asked",
        id="duration",
    ),
    pytest.param(
        'schedule "fault abort 500 kube-dns.kube-system 10%" at +1h',
        1,
        "namespace kube-system is protected by policy",
        id="protected",
    ),
    pytest.param(
        f'schedule "fault abort ⁵⁰⁰ web-svc.{NS} 10%" at +1h', 2, "is not a gRPC status code name", id="grpc"
    ),
    pytest.param(
        f'schedule "fault abort 500 web-svc.{NS} 10%" at 9999-12-31T23:00',
        1,
        "a schedule runs at most 3653 days ahead",
        id="year-9999",
    ),
    pytest.param(
        f'schedule "fault abort 500 web-svc.{NS} 10%" at 0001-01-01T00:00+01:00',
        1,
        "is not a time meshbot can schedule",
        id="year-1",
    ),
]


@pytest.mark.parametrize(("command", "code", "message"), SCHEDULE_CAPS)
def test_a_schedule_meets_every_fault_cap_when_it_is_made(
    meshbot: Meshbot, command: str, code: int, message: str
) -> None:
    meshbot.set_policy(
        {"faults": {"max_percentage": 50, "max_delay": "30s", "max_duration": "5m", "default_duration": "5m"}}
    )
    assert_refused(meshbot, command, code, message, channel=CHANNEL)
    assert "No schedules" in meshbot.ok("schedules", channel=CHANNEL)


def test_bounds_at_their_limits_are_accepted(meshbot: Meshbot) -> None:
    meshbot.ok(f"{SCHEDULE} at +730d remind=7d", channel=CHANNEL)
    meshbot.ok("audit since=3650d limit=500")
    # The largest BIGINT reaches the query, which says there is no such event.
    largest = meshbot.run(f"audit before={2**63 - 1}")
    assert (largest.exit_code, largest.stdout) == (1, "")
    assert f"there is no audit event {2**63 - 1}" in largest.stderr
    meshbot.ok(f"fault abort 500 web-svc.{NS} header=x-user:{'a' * 1024}")


def test_extending_by_fractions_of_a_second_stops_at_the_cap(meshbot: Meshbot) -> None:
    """Each `extend 999ms` once added nothing to the stored duration, so the cap never came."""
    meshbot.set_policy({"faults": {"max_duration": "1h"}})
    experiment_id = meshbot.inject_fault(f"fault delay 3s web-svc.{NS} for 59m59s")
    meshbot.ok(f"fault extend {experiment_id} 999ms")
    assert_refused(
        meshbot,
        f"fault extend {experiment_id} 999ms",
        1,
        f"{experiment_id} would last 3601s in all; the policy allows at most 1h",
    )
    experiment = meshbot.experiment(experiment_id)
    assert experiment.started_at is not None and experiment.expires_at is not None
    lasts = experiment.expires_at - experiment.started_at
    assert lasts == timedelta(seconds=3599.999)
    assert experiment.duration_seconds == 3600  # rounded up: the record never understates it
