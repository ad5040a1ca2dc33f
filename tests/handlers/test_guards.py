"""The guard grammar (core.guards) as `fault … guard=` and the policy file read it: what parses,
and one clear line for each way it does not."""

from __future__ import annotations

import pytest

from core.guards import Guard, GuardError, parse_guard
from core.policy import Policy
from handlers.errors import UsageError
from handlers.fault import StartCommand, parse_args


def test_several_guards_ride_on_a_fault_with_its_other_options() -> None:
    command = parse_args(
        [
            "abort",
            "500",
            "web-svc",
            "40%",
            "for",
            "45s",
            "guard=error_rate(web-svc) > 20%",
            "guard=p99(voting-svc.emojivoto-istio) >= 1.5s window=30s",
            "guard=rps < 2",
        ]
    )
    assert isinstance(command, StartCommand)
    assert command.percentage == 40.0
    assert command.guards == (
        Guard("error_rate", ">", 0.2, service="web-svc"),
        Guard("p99", ">=", 1500.0, service="voting-svc", namespace="emojivoto-istio", window="30s"),
        Guard("rps", "<", 2.0),
    )


@pytest.mark.parametrize(
    ("text", "value", "breached"),
    [
        ("success_rate < 90%", 0.85, True),
        ("success_rate < 90%", 0.95, False),
        ("p50 > 200ms", 200.0, False),
        ("p90 <= 200ms", 200.0, True),
    ],
)
def test_a_guard_compares_its_metric_to_its_threshold(text: str, value: float, breached: bool) -> None:
    assert parse_guard(text).breached(value) is breached


def test_a_guard_reads_back_as_written() -> None:
    assert parse_guard("error_rate(web-svc) > 20%").text() == "error_rate(web-svc) > 20%"
    assert parse_guard("p99 > 2s window=30s").text() == "p99 > 2s window=30s"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("error_rate(web-svc) 20%", "must look like error_rate(web-svc) > 20%"),
        ("latency(web-svc) > 20%", "unknown guard metric 'latency'"),
        ("error_rate > 20", "needs a percentage like 20%"),
        ("error_rate > 120%", "between 0% and 100%"),
        ("p99 > 20%", "needs a duration like 500ms"),
        ("rps > fast", "must look like"),
        ("rps > 1234567", "needs a number of requests per second"),
        ("error_rate > 20% window=2h", "between 5s and 30m"),
        ("error_rate > 20% window=1s", "between 5s and 30m"),
        ("error_rate(Web_Svc) > 20%", "must look like"),
        ("error_rate > 20%; rm -rf /", "must look like"),
    ],
)
def test_a_malformed_guard_is_one_clear_line(text: str, words: str) -> None:
    with pytest.raises(GuardError) as caught:
        parse_guard(text)
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)
    with pytest.raises(UsageError) as usage:
        parse_args(["abort", "500", "web-svc", f"guard={text}"])
    assert words in str(usage.value)


def test_no_more_than_five_guards() -> None:
    with pytest.raises(UsageError, match="at most 5 guards"):
        parse_args(["abort", "500", "web-svc", *["guard=rps < 1"] * 6])


def test_the_policy_refuses_a_default_guard_it_cannot_parse() -> None:
    with pytest.raises(ValueError, match="shop: unknown guard metric"):
        Policy.model_validate({"guards": {"namespaces": {"shop": ["errors > 5%"]}}})
    policy = Policy.model_validate({"guards": {"namespaces": {"shop": ["error_rate > 5%"]}}})
    assert policy.guards.on_unavailable == "stop"
