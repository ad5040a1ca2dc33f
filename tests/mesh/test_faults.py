"""The pure fault engine: specs, fault blocks, route selection, and the JSON Patches that add a fault
and take exactly it out again. Patches are applied with the playground's RFC 6902 implementation,
the same code that answers PATCH requests."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from mesh import faults
from mesh.errors import MeshError
from mesh.faults import (
    ANNOTATION,
    FaultPlanError,
    FaultSpec,
    InvalidFault,
    ServiceTarget,
    abort_fault,
    delay_fault,
    fault_block,
    plan_changes,
    plan_removal,
    protobuf_duration,
    restrict_match,
)
from playground.errors import ApiError
from playground.patch import apply_json_patch

NS = "emojivoto-istio"
WEB = ServiceTarget("web-svc", NS)
EXPIRES = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
ABORT_50 = abort_fault(50, http_status=500)
DELAY_3S = delay_fault(timedelta(seconds=3), 100, max_delay=timedelta(minutes=5))


def to(host: str, port: int | None = None) -> dict[str, Any]:
    destination: dict[str, Any] = {"host": host}
    if port is not None:
        destination["port"] = {"number": port}
    return {"destination": destination}


def vs(name: str, *http: dict[str, Any], rv: str = "7", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": NS, "resourceVersion": rv},
        "spec": {"hosts": spec.pop("hosts", [name]), **spec, "http": list(http)},
    }


def seed_vs() -> dict[str, Any]:
    """The seed write-up's VirtualService `emojivoto`."""
    return vs(
        "emojivoto",
        {"match": [{"uri": {"prefix": "/"}}], "route": [to("web-svc", 80)]},
        hosts=["emoji-istio.test.net"],
        gateways=["emojivoto-gateway"],
    )


def plan(
    *services: dict[str, Any], spec: FaultSpec = ABORT_50, experiment: str = "exp-1"
) -> faults.FaultChanges:
    return plan_changes(services, target=WEB, spec=spec, experiment_id=experiment, expires_at=EXPIRES)


def applied(obj: dict[str, Any], change: faults.VsChange) -> dict[str, Any]:
    return apply_json_patch(obj, change.patch)


def removed(obj: dict[str, Any], experiment: str) -> dict[str, Any]:
    removal = plan_removal(obj, experiment)
    assert removal is not None
    return apply_json_patch(obj, removal.patch)


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize("value", [0.1, 1, 50, 100])
def test_percentage_in_range_is_accepted(value: float) -> None:
    assert faults.validate_percentage(value) == float(value)


@pytest.mark.parametrize("value", [0, -5, 100.01, float("nan"), True])
def test_percentage_out_of_range_is_refused(value: float) -> None:
    with pytest.raises(InvalidFault, match="percentage must be"):
        faults.validate_percentage(value)


def test_percentage_message_shows_the_value() -> None:
    with pytest.raises(InvalidFault, match=r"more than 0 and at most 100, got 150"):
        faults.validate_percentage(150)


@pytest.mark.parametrize("code", [200, 404, 500, 503, 599])
def test_http_status_in_range_is_accepted(code: int) -> None:
    assert faults.validate_http_status(code) == code


@pytest.mark.parametrize("code", [199, 600, 0, 1000])
def test_http_status_out_of_range_is_refused(code: int) -> None:
    with pytest.raises(InvalidFault, match=f"between 200 and 599, got {code}"):
        faults.validate_http_status(code)


@pytest.mark.parametrize("code", ["500", 500.0, True])
def test_http_status_must_be_a_whole_number(code: Any) -> None:
    with pytest.raises(InvalidFault, match="whole number"):
        faults.validate_http_status(code)


@pytest.mark.parametrize("name", ["unavailable", "Unavailable", "UNAVAILABLE", " unavailable "])
def test_grpc_status_is_accepted_in_any_case_and_written_upper_case(name: str) -> None:
    assert faults.validate_grpc_status(name) == "UNAVAILABLE"


def test_every_canonical_grpc_code_is_accepted() -> None:
    assert len(faults.GRPC_STATUS_CODES) == 17
    for name in faults.GRPC_STATUS_CODES:
        assert faults.validate_grpc_status(name.lower()) == name


@pytest.mark.parametrize("name", ["14", "UNAVAILABLE_ERROR", "", "server-error"])
def test_unknown_grpc_status_is_refused_with_the_known_names(name: str) -> None:
    with pytest.raises(InvalidFault, match=r"not a gRPC status code name; use one of OK, CANCELLED"):
        faults.validate_grpc_status(name)


@pytest.mark.parametrize("delay", [timedelta(milliseconds=1), timedelta(seconds=3), timedelta(minutes=5)])
def test_delay_within_bounds_is_accepted(delay: timedelta) -> None:
    assert faults.validate_delay(delay, timedelta(minutes=5)) == delay


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(microseconds=500), "0.5ms"),
        (timedelta(milliseconds=250), "250ms"),
        (timedelta(milliseconds=1500), "1.5s"),
        (timedelta(minutes=10), "10m"),
        (timedelta(hours=1, minutes=30), "1h30m"),
    ],
)
def test_messages_describe_durations_as_people_type_them(value: timedelta, text: str) -> None:
    assert faults.human_duration(value) == text


def test_delay_below_one_millisecond_is_refused() -> None:
    with pytest.raises(InvalidFault, match="at least 1ms"):
        faults.validate_delay(timedelta(microseconds=500))
    with pytest.raises(InvalidFault, match="at least 1ms"):
        faults.validate_delay(timedelta(0))


def test_delay_finer_than_a_millisecond_is_refused() -> None:
    with pytest.raises(InvalidFault, match="whole milliseconds"):
        faults.validate_delay(timedelta(microseconds=1500))


def test_delay_above_the_maximum_is_refused_naming_the_maximum() -> None:
    with pytest.raises(InvalidFault, match="longer than the allowed maximum of 30s"):
        faults.validate_delay(timedelta(seconds=31), timedelta(seconds=30))


def test_headers_are_lower_cased() -> None:
    assert faults.validate_headers({"X-User": "alice"}) == {"x-user": "alice"}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"x user": "a"}, "not a valid HTTP header name"),
        ({"": "a"}, "not a valid HTTP header name"),
        ({":authority": "a"}, "not a valid HTTP header name"),
        ({"x-user": ""}, "non-empty value"),
        ({"X-User": "a", "x-user": "b"}, "given twice"),
    ],
)
def test_bad_headers_are_refused(headers: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidFault, match=message):
        faults.validate_headers(headers)


@pytest.mark.parametrize("experiment", ["exp-7f3a", "a", "e" * 40])
def test_experiment_ids_that_fit_route_names_are_accepted(experiment: str) -> None:
    assert faults.validate_experiment_id(experiment) == experiment


@pytest.mark.parametrize("experiment", ["", "Exp-1", "exp_1", "-exp", "exp-", "e" * 41])
def test_other_experiment_ids_are_refused(experiment: str) -> None:
    with pytest.raises(InvalidFault, match="experiment id"):
        faults.validate_experiment_id(experiment)


def test_invalid_fault_is_a_mesh_error_and_a_value_error() -> None:
    with pytest.raises(MeshError):
        faults.validate_percentage(0)
    with pytest.raises(ValueError, match="percentage"):
        faults.validate_percentage(0)


# ----------------------------------------------------------------------------------- specs


def test_spec_normalises_grpc_status_and_headers() -> None:
    spec = abort_fault(10, grpc_status="unavailable", headers={"X-Test": "yes"})
    assert spec.grpc_status == "UNAVAILABLE"
    assert spec.headers == {"x-test": "yes"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "slow", "percentage": 5}, "fault kind must be 'delay' or 'abort'"),
        ({"kind": "delay", "percentage": 5}, "needs a delay"),
        ({"kind": "delay", "percentage": 5, "delay": timedelta(1), "http_status": 500}, "takes no status"),
        ({"kind": "abort", "percentage": 5}, "exactly one of"),
        ({"kind": "abort", "percentage": 5, "http_status": 500, "grpc_status": "INTERNAL"}, "exactly one"),
        ({"kind": "abort", "percentage": 5, "http_status": 500, "delay": timedelta(1)}, "takes no delay"),
        ({"kind": "abort", "percentage": 0, "http_status": 500}, "percentage"),
        ({"kind": "abort", "percentage": 5, "http_status": 700}, "between 200 and 599"),
        ({"kind": "abort", "percentage": 5, "grpc_status": "nope"}, "gRPC status"),
        ({"kind": "delay", "percentage": 5, "delay": timedelta(0)}, "at least 1ms"),
    ],
)
def test_inconsistent_specs_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidFault, match=message):
        FaultSpec(**kwargs)


def test_delay_fault_checks_the_operators_maximum() -> None:
    with pytest.raises(InvalidFault, match="maximum of 1m"):
        delay_fault(timedelta(minutes=2), 50, max_delay=timedelta(minutes=1))


@pytest.mark.parametrize(
    ("delay", "rendered"),
    [
        (timedelta(seconds=3), "3s"),
        (timedelta(milliseconds=500), "0.5s"),
        (timedelta(milliseconds=1), "0.001s"),
        (timedelta(milliseconds=1250), "1.25s"),
        (timedelta(minutes=2), "120s"),
        (timedelta(microseconds=1), "0.000001s"),
    ],
)
def test_durations_render_as_protobuf_json(delay: timedelta, rendered: str) -> None:
    assert protobuf_duration(delay) == rendered


def test_delay_block_always_carries_the_percentage() -> None:
    spec = delay_fault(timedelta(seconds=3), 100, max_delay=timedelta(minutes=1))
    assert fault_block(spec) == {"delay": {"fixedDelay": "3s", "percentage": {"value": 100.0}}}


def test_http_abort_block() -> None:
    assert fault_block(ABORT_50) == {"abort": {"httpStatus": 500, "percentage": {"value": 50.0}}}


def test_grpc_abort_block() -> None:
    spec = abort_fault(25, grpc_status="unavailable")
    assert fault_block(spec) == {"abort": {"grpcStatus": "UNAVAILABLE", "percentage": {"value": 25.0}}}


# ------------------------------------------------------------------------------ hosts, routes


@pytest.mark.parametrize(
    "host",
    [
        "web-svc",
        "web-svc.emojivoto-istio",
        "web-svc.emojivoto-istio.svc",
        "web-svc.emojivoto-istio.svc.cluster.local",
        "WEB-SVC.emojivoto-istio.svc.cluster.local.",
    ],
)
def test_every_way_of_naming_the_service_matches(host: str) -> None:
    assert WEB.is_host(host, NS)


@pytest.mark.parametrize(
    "host",
    ["emoji-svc", "web-svc.other", "web-svc.other.svc.cluster.local", "web", "web-svc.emojivoto-istio.svc.x"],
)
def test_other_hosts_do_not_match(host: str) -> None:
    assert not WEB.is_host(host, NS)


def test_a_short_name_resolves_in_the_virtualservices_namespace() -> None:
    assert not WEB.is_host("web-svc", "other")
    assert WEB.is_host("web-svc.emojivoto-istio", "other")


def test_cluster_domain_can_differ() -> None:
    target = ServiceTarget("web-svc", NS, cluster_domain="corp.example")
    assert target.is_host("web-svc.emojivoto-istio.svc.corp.example", NS)
    assert not target.is_host("web-svc.emojivoto-istio.svc.cluster.local", NS)


def test_no_headers_keeps_the_match_as_it_is() -> None:
    assert restrict_match(None, {}) is None
    assert restrict_match([{"uri": {"prefix": "/"}}], {}) == [{"uri": {"prefix": "/"}}]


def test_headers_alone_become_the_match() -> None:
    assert restrict_match(None, {"x-user": "alice"}) == [{"headers": {"x-user": {"exact": "alice"}}}]


def test_headers_are_added_to_every_condition() -> None:
    match = [{"uri": {"prefix": "/api"}}, {"uri": {"prefix": "/img"}, "headers": {"x-env": {"exact": "qa"}}}]
    assert restrict_match(match, {"x-user": "alice"}) == [
        {"uri": {"prefix": "/api"}, "headers": {"x-user": {"exact": "alice"}}},
        {"uri": {"prefix": "/img"}, "headers": {"x-env": {"exact": "qa"}, "x-user": {"exact": "alice"}}},
    ]
    assert match[0] == {"uri": {"prefix": "/api"}}, "the original match must not change"


def test_a_condition_that_contradicts_the_headers_is_dropped() -> None:
    match = [{"headers": {"x-user": {"exact": "bob"}}}, {"uri": {"prefix": "/"}}]
    assert restrict_match(match, {"x-user": "alice"}) == [
        {"uri": {"prefix": "/"}, "headers": {"x-user": {"exact": "alice"}}}
    ]


def test_a_header_match_implied_by_the_exact_value_is_narrowed() -> None:
    match = [{"headers": {"x-user": {"prefix": "al"}}}, {"headers": {"x-user": {"regex": "a.*e"}}}]
    assert restrict_match(match, {"x-user": "alice"}) == [
        {"headers": {"x-user": {"exact": "alice"}}},
        {"headers": {"x-user": {"exact": "alice"}}},
    ]


def test_a_header_match_the_value_does_not_satisfy_drops_the_condition() -> None:
    assert restrict_match([{"headers": {"x-user": {"prefix": "bo"}}}], {"x-user": "alice"}) == []


def test_without_headers_that_exclude_the_value_drop_the_condition() -> None:
    match = [
        {"withoutHeaders": {"x-user": {"exact": "alice"}}},
        {"withoutHeaders": {"x-user": {"exact": "b"}}},
    ]
    assert restrict_match(match, {"x-user": "alice"}) == [
        {"withoutHeaders": {"x-user": {"exact": "b"}}, "headers": {"x-user": {"exact": "alice"}}}
    ]


# ------------------------------------------------------------------------------ planning


def test_seed_abort_puts_a_fault_route_with_the_seeds_match_first() -> None:
    original = seed_vs()
    (change,) = plan(original).changes
    after = applied(original, change)
    assert after["spec"]["http"] == [
        {
            "name": "meshbot-exp-1",
            "match": [{"uri": {"prefix": "/"}}],
            "route": [{"destination": {"host": "web-svc", "port": {"number": 80}}}],
            "fault": {"abort": {"httpStatus": 500, "percentage": {"value": 50.0}}},
        },
        original["spec"]["http"][0],
    ]
    assert change.vs_name == "emojivoto"
    assert not change.created
    assert change.spec_before == original["spec"]
    assert change.inserted_routes == [after["spec"]["http"][0]]


def test_the_patch_tests_the_resource_version_first() -> None:
    (change,) = plan(seed_vs()).changes
    assert change.patch[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "7"}
    assert change.resource_version == "7"
    newer = seed_vs()
    newer["metadata"]["resourceVersion"] = "8"
    with pytest.raises(ApiError) as failed:
        applied(newer, change)
    assert failed.value.code == 422


def test_the_annotation_records_expiry_and_route_names() -> None:
    (change,) = plan(seed_vs()).changes
    after = applied(seed_vs(), change)
    assert after["metadata"]["annotations"] == {
        ANNOTATION: json.dumps(
            {"exp-1": {"expires": "2030-01-02T03:04:05Z", "routes": ["meshbot-exp-1"]}},
            separators=(",", ":"),
        )
    }
    (mark,) = faults.marks_of(after).values()
    assert mark == faults.Mark(EXPIRES, ("meshbot-exp-1",))


def test_a_fault_route_goes_directly_before_each_route_it_shadows() -> None:
    original = vs(
        "web-svc",
        {"name": "api", "match": [{"uri": {"prefix": "/api"}}], "route": [to("web-svc")]},
        {"name": "emoji", "match": [{"uri": {"prefix": "/emoji"}}], "route": [to("emoji-svc")]},
        {"name": "rest", "route": [to("web-svc.emojivoto-istio.svc.cluster.local")]},
    )
    (change,) = plan(original).changes
    http = applied(original, change)["spec"]["http"]
    assert [r["name"] for r in http] == ["meshbot-exp-1", "api", "emoji", "meshbot-exp-1-2", "rest"]
    assert http[0]["match"] == [{"uri": {"prefix": "/api"}}]
    assert "match" not in http[3]
    assert http[3]["route"] == [to("web-svc.emojivoto-istio.svc.cluster.local")]
    assert all("fault" not in r for r in (http[1], http[2], http[4]))


def test_split_traffic_keeps_its_weights_and_subsets() -> None:
    split = [
        {"destination": {"host": "web-svc", "subset": "v1"}, "weight": 90},
        {"destination": {"host": "web-svc", "subset": "v2"}, "weight": 10},
    ]
    (change,) = plan(vs("web-svc", {"route": split})).changes
    assert change.inserted_routes[0]["route"] == split


def test_retries_and_timeout_are_not_copied_but_warned_about() -> None:
    route = {"name": "main", "route": [to("web-svc")], "retries": {"attempts": 3}, "timeout": "2s"}
    result = plan(vs("web-svc", route))
    (inserted,) = result.changes[0].inserted_routes
    assert "retries" not in inserted
    assert "timeout" not in inserted
    assert any("route 'main'" in w and "retries and timeout" in w for w in result.warnings)


def test_rewrites_and_header_edits_are_kept_for_the_requests_the_fault_lets_through() -> None:
    route = {
        "route": [to("web-svc")],
        "rewrite": {"uri": "/v2"},
        "headers": {"request": {"set": {"x-a": "1"}}},
    }
    (inserted,) = plan(vs("web-svc", route)).changes[0].inserted_routes
    assert inserted["rewrite"] == {"uri": "/v2"}
    assert inserted["headers"] == {"request": {"set": {"x-a": "1"}}}


def test_an_existing_fault_on_the_shadowed_route_is_not_copied() -> None:
    route = {"route": [to("web-svc")], "fault": {"delay": {"fixedDelay": "1s", "percentage": {"value": 1}}}}
    (inserted,) = plan(vs("web-svc", route)).changes[0].inserted_routes
    assert inserted["fault"] == fault_block(ABORT_50)


def test_header_matches_limit_the_fault_to_test_traffic() -> None:
    spec = abort_fault(100, http_status=503, headers={"x-user": "alice"})
    (change,) = plan(seed_vs(), spec=spec).changes
    assert change.inserted_routes[0]["match"] == [
        {"uri": {"prefix": "/"}, "headers": {"x-user": {"exact": "alice"}}}
    ]


def test_headers_that_no_route_to_the_service_can_match_are_refused() -> None:
    spec = abort_fault(100, http_status=503, headers={"x-user": "alice"})
    only_bob = vs("web-svc", {"match": [{"headers": {"x-user": {"exact": "bob"}}}], "route": [to("web-svc")]})
    with pytest.raises(FaultPlanError, match="x-user=alice"):
        plan(only_bob, spec=spec)


def test_a_route_the_headers_cannot_match_is_skipped_with_a_warning() -> None:
    spec = abort_fault(100, http_status=503, headers={"x-user": "alice"})
    bob = {"name": "bob", "match": [{"headers": {"x-user": {"exact": "bob"}}}], "route": [to("web-svc")]}
    result = plan(vs("web-svc", bob, {"route": [to("web-svc")]}), spec=spec)
    (change,) = result.changes
    assert [r["match"] for r in change.inserted_routes] == [[{"headers": {"x-user": {"exact": "alice"}}}]]
    assert any("route 'bob'" in w and "cannot apply" in w for w in result.warnings)


def test_routes_to_other_services_and_redirects_are_left_alone() -> None:
    front = vs(
        "front",
        {"redirect": {"uri": "/new"}, "match": [{"uri": {"exact": "/old"}}]},
        {"route": [to("emoji-svc")], "mirror": {"host": "web-svc"}},
    )
    (change,) = plan(front).changes
    assert change.created
    assert change.vs_name == "meshbot-web-svc"


def test_a_foreign_virtualservice_with_meshbots_name_is_not_taken_over() -> None:
    impostor = vs("meshbot-web-svc", {"route": [to("x")]}, hosts=["x"])
    with pytest.raises(FaultPlanError, match="meshbot-web-svc exists but does not route to web-svc"):
        plan(impostor)


def test_a_gateway_bound_virtualservice_is_warned_about() -> None:
    result = plan(seed_vs())
    assert any("bound to gateway emojivoto-gateway only" in w for w in result.warnings)


def test_a_virtualservice_bound_to_the_mesh_too_is_not_warned_about() -> None:
    mesh_too = vs("web-svc", {"route": [to("web-svc")]}, gateways=["emojivoto-gateway", "mesh"])
    assert not any("gateway" in w for w in plan(mesh_too).warnings)


def test_tcp_and_tls_routes_to_the_service_are_warned_about() -> None:
    mixed = vs(
        "web-svc",
        {"route": [to("web-svc")]},
        tcp=[{"route": [to("web-svc", 9000)]}],
        tls=[{"match": [{"sniHosts": ["a"]}], "route": [to("web-svc", 443)]}],
    )
    result = plan(mixed)
    assert len(result.changes) == 1
    assert any("routes tcp/tls traffic to web-svc" in w for w in result.warnings)


def test_only_tcp_routes_to_the_service_is_refused_rather_than_adding_a_second_virtualservice() -> None:
    tcp_only = vs("web-svc", tcp=[{"route": [to("web-svc", 9000)]}])
    with pytest.raises(FaultPlanError, match="already serves web-svc"):
        plan(tcp_only)


def test_several_virtualservices_for_the_host_are_warned_about() -> None:
    result = plan(
        vs("web-a", {"route": [to("web-svc")]}, hosts=["web-svc"]),
        vs("web-b", {"route": [to("web-svc")]}, hosts=["web-svc.emojivoto-istio.svc.cluster.local"]),
    )
    assert [c.vs_name for c in result.changes] == ["web-a", "web-b"]
    assert any("2 VirtualServices are for web-svc (web-a, web-b)" in w for w in result.warnings)


def test_every_virtualservice_routing_to_the_service_is_changed() -> None:
    mesh = vs("web-svc", {"route": [to("web-svc")]})
    result = plan(seed_vs(), mesh)
    assert [c.vs_name for c in result.changes] == ["emojivoto", "web-svc"]


def test_a_meshbot_virtualservice_is_planned_when_none_routes_to_the_service() -> None:
    result = plan(vs("emoji", {"route": [to("emoji-svc")]}, hosts=["emoji-svc"]))
    (change,) = result.changes
    assert change.created
    assert change.patch == []
    assert change.body == {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {
            "name": "meshbot-web-svc",
            "namespace": NS,
            "labels": {"app.kubernetes.io/managed-by": "meshbot"},
            "annotations": {
                ANNOTATION: '{"exp-1":{"expires":"2030-01-02T03:04:05Z","routes":["meshbot-exp-1"]}}'
            },
        },
        "spec": {
            "hosts": ["web-svc"],
            "http": [
                {
                    "name": "meshbot-exp-1",
                    "route": [{"destination": {"host": "web-svc"}}],
                    "fault": fault_block(ABORT_50),
                },
                {"name": "meshbot-default", "route": [{"destination": {"host": "web-svc"}}]},
            ],
        },
    }


def test_the_meshbot_virtualservice_carries_the_header_match() -> None:
    spec = delay_fault(timedelta(seconds=1), 10, max_delay=timedelta(minutes=1), headers={"x-test": "1"})
    (change,) = plan(spec=spec).changes
    assert change.body is not None
    assert change.body["spec"]["http"][0]["match"] == [{"headers": {"x-test": {"exact": "1"}}}]


def test_a_virtualservice_that_claims_the_host_but_routes_elsewhere_is_not_duplicated() -> None:
    with pytest.raises(FaultPlanError, match="web-canary already serves web-svc"):
        plan(vs("web-canary", {"route": [to("web-canary")]}, hosts=["web-svc"]))


def test_a_second_fault_patches_the_meshbot_virtualservice() -> None:
    (first,) = plan().changes
    assert first.body is not None
    owned = copy.deepcopy(first.body)
    owned["metadata"]["resourceVersion"] = "9"
    result = plan(owned, spec=DELAY_3S, experiment="exp-2")
    (second,) = result.changes
    assert not second.created
    http = applied(owned, second)["spec"]["http"]
    # Both existing routes send to web-svc with the same (empty) match: one fault route covers both.
    assert [r["name"] for r in http] == ["meshbot-exp-2", "meshbot-exp-1", "meshbot-default"]
    assert any("experiment exp-1 already injects a fault" in w for w in result.warnings)


def test_the_same_experiment_twice_is_refused() -> None:
    (change,) = plan(seed_vs()).changes
    with pytest.raises(FaultPlanError, match="exp-1 already has a fault on VirtualService emojivoto"):
        plan(applied(seed_vs(), change))


def test_an_unreadable_annotation_is_not_overwritten() -> None:
    broken = seed_vs()
    broken["metadata"]["annotations"] = {ANNOTATION: "not json"}
    with pytest.raises(FaultPlanError, match="is not a JSON object"):
        plan(broken)


def test_expiry_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_changes([], target=WEB, spec=ABORT_50, experiment_id="exp-1", expires_at=datetime(2030, 1, 1))


def test_the_expiry_is_written_in_utc() -> None:
    cest = datetime(2030, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert faults.format_expiry(cest) == "2030-06-01T12:00:00Z"
    assert faults.parse_expiry("2030-06-01T12:00:00Z") == datetime(2030, 6, 1, 12, tzinfo=UTC)


# ------------------------------------------------------------------------------ annotations


def test_existing_annotations_are_kept_and_restored() -> None:
    original = seed_vs()
    original["metadata"]["annotations"] = {"owner": "team-web"}
    (change,) = plan(original).changes
    assert change.annotations_before == {"owner": "team-web"}
    after = applied(original, change)
    assert after["metadata"]["annotations"]["owner"] == "team-web"
    assert removed(after, "exp-1")["metadata"]["annotations"] == {"owner": "team-web"}


def test_the_annotation_map_is_removed_again_when_it_was_absent() -> None:
    original = seed_vs()
    (change,) = plan(original).changes
    assert change.annotations_before is None
    restored = removed(applied(original, change), "exp-1")
    assert restored == original


def test_an_annotation_added_meanwhile_makes_the_removal_fail_instead_of_going_with_the_map() -> None:
    (change,) = plan(seed_vs()).changes
    after = applied(seed_vs(), change)
    removal = plan_removal(after, "exp-1")
    assert removal is not None
    after["metadata"]["annotations"]["owner"] = "team-web"
    with pytest.raises(ApiError):
        apply_json_patch(after, removal.patch)


def test_pointer_escapes_slash_and_tilde() -> None:
    assert faults.pointer("metadata", "annotations", "meshbot.dev/faults") == (
        "/metadata/annotations/meshbot.dev~1faults"
    )
    assert faults.pointer("a~b", 0) == "/a~0b/0"


def test_marks_skip_entries_meshbot_did_not_write() -> None:
    obj = seed_vs()
    obj["metadata"]["annotations"] = {
        ANNOTATION: json.dumps(
            {
                "exp-1": {"expires": "2030-01-02T03:04:05Z", "routes": ["meshbot-exp-1"]},
                "junk": {"expires": "soon"},
                "junk-2": "x",
            }
        )
    }
    assert list(faults.marks_of(obj)) == ["exp-1"]


# ------------------------------------------------------------------------------ removal


def test_two_faults_then_both_removed_restore_the_original_exactly() -> None:
    original = seed_vs()
    (abort,) = plan(original).changes
    with_abort = applied(original, abort)
    with_abort["metadata"]["resourceVersion"] = "8"
    (delay,) = plan(with_abort, spec=DELAY_3S, experiment="exp-2").changes
    with_both = applied(with_abort, delay)
    assert [r.get("name") for r in with_both["spec"]["http"]] == ["meshbot-exp-2", "meshbot-exp-1", None]
    only_delay = removed(with_both, "exp-1")
    assert [r.get("name") for r in only_delay["spec"]["http"]] == ["meshbot-exp-2", None]
    assert list(faults.marks_of(only_delay)) == ["exp-2"]
    restored = removed(only_delay, "exp-2")
    assert restored["spec"] == original["spec"]
    assert "annotations" not in restored["metadata"]


def test_removal_tests_each_name_at_its_index_highest_first() -> None:
    original = vs("web-svc", {"route": [to("web-svc")], "match": [{"port": 80}]}, {"route": [to("web-svc")]})
    (change,) = plan(original).changes
    after = applied(original, change)
    removal = plan_removal(after, "exp-1")
    assert removal is not None
    assert removal.patch[:4] == [
        {"op": "test", "path": "/spec/http/2/name", "value": "meshbot-exp-1-2"},
        {"op": "remove", "path": "/spec/http/2"},
        {"op": "test", "path": "/spec/http/0/name", "value": "meshbot-exp-1"},
        {"op": "remove", "path": "/spec/http/0"},
    ]
    assert removal.removed_routes == ["meshbot-exp-1", "meshbot-exp-1-2"]
    assert apply_json_patch(after, removal.patch)["spec"] == original["spec"]


def test_a_route_someone_else_added_survives_the_removal() -> None:
    original = seed_vs()
    (change,) = plan(original).changes
    after = applied(original, change)
    theirs = {"name": "hotfix", "match": [{"uri": {"exact": "/health"}}], "route": [to("web-svc", 80)]}
    after["spec"]["http"].insert(0, theirs)
    restored = removed(after, "exp-1")
    assert restored["spec"]["http"] == [theirs, *original["spec"]["http"]]


def test_a_route_already_gone_is_reported_missing() -> None:
    (change,) = plan(seed_vs()).changes
    after = applied(seed_vs(), change)
    del after["spec"]["http"][0]
    removal = plan_removal(after, "exp-1")
    assert removal is not None
    assert removal.removed_routes == []
    assert removal.missing_routes == ["meshbot-exp-1"]
    assert apply_json_patch(after, removal.patch)["spec"] == seed_vs()["spec"]


def test_an_experiment_not_on_the_virtualservice_has_no_removal() -> None:
    assert plan_removal(seed_vs(), "exp-1") is None


def test_the_meshbot_virtualservice_is_deleted_with_its_last_experiment_only() -> None:
    (first,) = plan().changes
    assert first.body is not None
    owned = copy.deepcopy(first.body)
    owned["metadata"]["resourceVersion"] = "7"
    removal = plan_removal(owned, "exp-1")
    assert removal is not None and removal.delete_vs
    (second,) = plan(owned, spec=DELAY_3S, experiment="exp-2").changes
    both = applied(owned, second)
    first_out = plan_removal(both, "exp-1")
    assert first_out is not None and not first_out.delete_vs
    last = plan_removal(apply_json_patch(both, first_out.patch), "exp-2")
    assert last is not None and last.delete_vs


def test_a_meshbot_virtualservice_someone_added_a_route_to_is_kept() -> None:
    (first,) = plan().changes
    assert first.body is not None
    owned = copy.deepcopy(first.body)
    owned["spec"]["http"].insert(0, {"name": "theirs", "route": [to("web-svc")]})
    removal = plan_removal(owned, "exp-1")
    assert removal is not None and not removal.delete_vs


def test_two_virtualservices_for_one_host_are_warned_about_and_both_get_the_fault() -> None:
    # IST0109: sidecars pick one of them, so the person must know the fault may not show.
    first = vs("web-a", {"route": [to("web-svc")]}, hosts=["web-svc"])
    second = vs("web-b", {"route": [to("web-svc")]}, hosts=["web-svc.emojivoto-istio.svc.cluster.local"])
    result = plan(first, second)
    [warning] = [w for w in result.warnings if "IST0109" in w]
    assert warning.startswith("2 VirtualServices are for web-svc (web-a, web-b)")
    assert sorted(c.vs_name for c in result.changes) == ["web-a", "web-b"]


def test_one_virtualservice_for_the_host_is_not_warned_about_as_ist0109() -> None:
    assert not any("IST0109" in w for w in plan(vs("web-svc", {"route": [to("web-svc")]})).warnings)
