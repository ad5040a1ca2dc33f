"""Label and field selectors: grammar, matching and the API server's error messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from playground.errors import ApiError
from playground.selectors import (
    LabelSelector,
    label_selector_from_match,
    parse_field_selector,
    parse_label_selector,
)

NAME_PART_ERROR = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
VALUE_ERROR = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)

LABELS = {"app": "web", "tier": "frontend", "version": "3"}


def bad_request_message(text: str) -> str:
    with pytest.raises(ApiError) as caught:
        parse_label_selector(text)
    assert caught.value.code == 400
    assert caught.value.reason == "BadRequest"
    return caught.value.message


# --- label selector grammar and matching -------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=api", False),
        ("app!=api", True),
        ("app!=web", False),
        ("missing!=x", True),  # != matches when the label is absent
        ("app in (web,api)", True),
        ("app in (api)", False),
        ("app notin (api,db)", True),
        ("app notin (web)", False),
        ("missing notin (x)", True),  # notin matches when the label is absent
        ("missing in (x)", False),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("app=web,tier=frontend", True),
        ("app=web,tier=backend", False),
        ("version>2", True),
        ("version>3", False),
        ("version<4", True),
        ("app>1", False),  # a non-numeric label never compares
        ("missing<4", False),
        ("  app = web ,\ttier in ( frontend , backend )  ", True),  # whitespace is tolerated
        ("app=", False),  # the empty value
        ("missing=", False),
        ("example.com/role=api", False),
    ],
)
def test_label_selector_matches_like_kubernetes(selector: str, expected: bool) -> None:
    assert parse_label_selector(selector).matches(LABELS) is expected


def test_empty_value_matches_an_empty_label() -> None:
    assert parse_label_selector("app=").matches({"app": ""})
    assert parse_label_selector("app in (,web)").matches({"app": ""})


def test_in_and_notin_are_plain_words_where_a_value_is_expected() -> None:
    selector = parse_label_selector("in in (in,notin)")
    assert selector.matches({"in": "notin"})
    assert not selector.matches({"in": "x"})


def test_empty_entries_in_a_value_set_stand_for_the_empty_value() -> None:
    selector = parse_label_selector("x in (foo,,baz),y,z notin ()")
    assert str(selector) == "x in (,baz,foo),y,z notin ()"


def test_requirements_are_sorted_by_key_and_printed_canonically() -> None:
    selector = parse_label_selector("tier notin (b,a),!gone,app==web,v>1,w<2,x!=y")
    assert str(selector) == "app==web,!gone,tier notin (a,b),v>1,w<2,x!=y"


def test_empty_selector_selects_everything_even_without_labels() -> None:
    selector = parse_label_selector("")
    assert selector.empty
    assert selector.matches({})
    assert selector.matches(None)


def test_qualified_keys_are_accepted() -> None:
    selector = parse_label_selector("app.kubernetes.io/name=web,a_b.c-d=x")
    assert selector.matches({"app.kubernetes.io/name": "web", "a_b.c-d": "x"})


# --- label selector errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
        ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
        ("a=(", "unable to parse requirement: found '(', expected: identifier"),
        ("a,", "found '', expected: identifier after ','"),
        ("a,,b", "found ',', expected: identifier after ','"),
        (",", "found ',', expected: !, identifier, or 'end of string'"),
        ("(a)", "found '(', expected: !, identifier, or 'end of string'"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        (
            "a>x",
            'unable to parse requirement: values[0]: Invalid value: "x": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        ("-a=b", f'unable to parse requirement: <nil>: Invalid value: "-a": {NAME_PART_ERROR}'),
        (
            "a=b@",
            f'unable to parse requirement: values[0][a]: Invalid value: "b@": {VALUE_ERROR}',
        ),
        (
            "a in (b@,c@)",
            f'unable to parse requirement: [values[0][a]: Invalid value: "b@": {VALUE_ERROR}, '
            f'values[1][a]: Invalid value: "c@": {VALUE_ERROR}]',
        ),
    ],
)
def test_label_selector_syntax_errors_are_bad_requests(selector: str, message: str) -> None:
    assert bad_request_message(selector) == message


def test_key_with_two_slashes_is_rejected() -> None:
    message = bad_request_message("a/b/c")
    assert message.startswith('unable to parse requirement: <nil>: Invalid value: "a/b/c": ')
    assert "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')" in message


def test_key_prefix_must_be_a_lowercase_dns_subdomain() -> None:
    message = bad_request_message("Example.com/a")
    assert message.startswith(
        'unable to parse requirement: <nil>: Invalid value: "Example.com/a": prefix part a '
        "lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters"
    )


def test_key_prefix_must_not_be_empty() -> None:
    assert bad_request_message("/a").endswith('Invalid value: "/a": prefix part must be non-empty')


@pytest.mark.parametrize("length", [64, 100])
def test_key_name_is_at_most_63_characters(length: int) -> None:
    key = "k" * length
    assert bad_request_message(key) == (
        f'unable to parse requirement: <nil>: Invalid value: "{key}": name part must be no more than 63 bytes'
    )


def test_value_is_at_most_63_characters() -> None:
    value = "v" * 64
    assert bad_request_message(f"a={value}") == (
        f'unable to parse requirement: values[0][a]: Invalid value: "{value}": must be no more than 63 bytes'
    )


def test_63_character_key_and_value_are_fine() -> None:
    name = "x" * 63
    assert parse_label_selector(f"{name}={name}").matches({name: name})


# --- metav1.LabelSelector ----------------------------------------------------------------------


def test_match_labels_and_expressions_are_anded() -> None:
    selector_dict: dict[str, Any] = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["frontend", "edge"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "version", "operator": "Exists"},
            {"key": "zone", "operator": "NotIn", "values": ["b"]},
        ],
    }
    before = copy.deepcopy(selector_dict)
    selector = label_selector_from_match(selector_dict)
    assert selector_dict == before
    assert selector.matches(LABELS)
    assert not selector.matches({**LABELS, "canary": "yes"})
    assert not selector.matches({**LABELS, "zone": "b"})
    assert not selector.matches({"app": "web", "tier": "frontend"})
    assert str(selector) == "app=web,!canary,tier in (edge,frontend),version,zone notin (b)"


def test_empty_label_selector_selects_everything_and_none_selects_nothing() -> None:
    assert label_selector_from_match({}).matches({"any": "thing"})
    assert label_selector_from_match({"matchLabels": {}}).empty
    nothing = label_selector_from_match(None)
    assert not nothing.empty
    assert not nothing.matches({})
    assert LabelSelector().matches({})


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
            '"Gt" is not a valid label selector operator',
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
            "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            'values: Invalid value: ["x"]: values set must be empty for exists and does not exist',
        ),
        (
            {"matchLabels": {"-a": "b"}},
            f'key: Invalid value: "-a": {NAME_PART_ERROR}',
        ),
        (
            {"matchLabels": {"a": "b c"}},
            f'values[0][a]: Invalid value: "b c": {VALUE_ERROR}',
        ),
    ],
)
def test_invalid_label_selector_dicts_are_bad_requests(selector: dict[str, Any], message: str) -> None:
    before = copy.deepcopy(selector)
    with pytest.raises(ApiError) as caught:
        label_selector_from_match(selector)
    assert (caught.value.code, caught.value.reason) == (400, "BadRequest")
    assert caught.value.message == message
    assert selector == before


# --- field selectors ---------------------------------------------------------------------------

POD_FIELDS = ("metadata.name", "metadata.namespace", "spec.nodeName", "status.phase")
POD = {
    "metadata": {"name": "web-1", "namespace": "emojivoto"},
    "spec": {"nodeName": "node-a", "hostNetwork": False},
    "status": {"phase": "Running"},
}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", True),
        ("metadata.name=web-1", True),
        ("metadata.name==web-1", True),
        ("metadata.name=web-2", False),
        ("metadata.name!=web-2", True),
        ("metadata.namespace=emojivoto,status.phase=Running", True),
        ("metadata.namespace=emojivoto,status.phase!=Running", False),
        ("spec.nodeName=", False),
        ("spec.nodeName!=", True),
        ("status.phase=Running,", True),  # empty terms are skipped
    ],
)
def test_field_selector_matches_dotted_paths(selector: str, expected: bool) -> None:
    before = copy.deepcopy(POD)
    assert parse_field_selector(selector, POD_FIELDS).matches(POD) is expected
    assert before == POD


def test_missing_field_compares_as_empty_string() -> None:
    unscheduled = {"metadata": {"name": "p"}, "status": {}}
    assert parse_field_selector("spec.nodeName=", POD_FIELDS).matches(unscheduled)
    assert not parse_field_selector("spec.nodeName!=", POD_FIELDS).matches(unscheduled)
    assert parse_field_selector("status.phase=", POD_FIELDS).matches({"status": None})


def test_booleans_compare_as_lowercase_words() -> None:
    selector = parse_field_selector("spec.hostNetwork=false", ("spec.hostNetwork",))
    assert selector.matches(POD)


def test_escaped_commas_and_equals_belong_to_the_value() -> None:
    selector = parse_field_selector(r"metadata.name=a\,b\=c\\d", POD_FIELDS)
    assert selector.matches({"metadata": {"name": "a,b=c\\d"}})
    assert len(selector.requirements) == 1


def test_field_selector_prints_canonically() -> None:
    text = "status.phase!=Failed,metadata.name==web-1"
    assert str(parse_field_selector(text, POD_FIELDS)) == "metadata.name=web-1,status.phase!=Failed"
    assert parse_field_selector("", POD_FIELDS).empty


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("spec.foo=bar", "field label not supported: spec.foo"),
        ("metadata.name=x,metadata.labels=y", "field label not supported: metadata.labels"),
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        (
            "status.phase=Running,bogus",
            "invalid selector: 'status.phase=Running,bogus'; can't understand 'bogus'",
        ),
        ("metadata.name=a=b", "invalid field selector: unescaped character in value: ="),
        (r"metadata.name=a\x", r"invalid field selector: invalid escape sequence: \x"),
        ("metadata.name=a\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_field_selector_errors_are_bad_requests(selector: str, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_field_selector(selector, POD_FIELDS)
    assert (caught.value.code, caught.value.reason) == (400, "BadRequest")
    assert caught.value.message == message
