"""Label and field selectors, parsed and matched as the Kubernetes API server does.

Label selectors follow ``labels.Parse`` from k8s.io/apimachinery: ``key=value``, ``key==value``,
``key!=value``, ``key in (a,b)``, ``key notin (a,b)``, ``key`` (exists), ``!key`` (does not exist)
and the numeric ``key>1`` / ``key<1``, joined by commas. Field selectors follow
``fields.ParseSelector``: ``field=value``, ``field==value``, ``field!=value`` joined by commas, with
``\\,``, ``\\=`` and ``\\\\`` escapes in values. Parse errors are ``ApiError`` 400 BadRequest
carrying the real server's messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from playground.errors import ApiError, bad_request

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Requirement",
    "label_selector_from_match",
    "parse_field_selector",
    "parse_label_selector",
]


class Operator(StrEnum):
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


# The order the real parser lists them in its "expected: ..." message.
_BINARY_OPERATORS = "in, notin, =, ==, !=, gt, lt"
_EXACT_OPERATORS = (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


# --------------------------------------------------------------------------------------------
# Key and value validation (k8s.io/apimachinery/pkg/api/validate/content)
# --------------------------------------------------------------------------------------------

_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_NAME_RE = re.compile(f"^{_NAME_FMT}$")
_NAME_ERR = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_VALUE_FMT = f"({_NAME_FMT})?"
_VALUE_RE = re.compile(f"^{_VALUE_FMT}$")
_VALUE_ERR = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character"
)
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = f"{_DNS1123_LABEL_FMT}(\\.{_DNS1123_LABEL_FMT})*"
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")
_DNS1123_SUBDOMAIN_ERR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character"
)
_MAX_NAME_LENGTH = 63
_MAX_PREFIX_LENGTH = 253


def _regex_error(message: str, regex: str, *examples: str) -> str:
    # Reproduces the upstream wording, double space before "or" included.
    if not examples:
        return f"{message} (regex used for validation is '{regex}')"
    listed = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {listed}regex used for validation is '{regex}')"


def _max_length_error(length: int) -> str:
    return f"must be no more than {length} bytes"


def label_key_errors(key: str) -> list[str]:
    """What is wrong with ``key`` as a label key (a qualified name); empty when it is valid."""
    parts = key.split("/")
    if len(parts) > 2:
        return [
            "a valid label key "
            + _regex_error(_NAME_ERR, _NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    errors: list[str] = []
    name = parts[-1]
    if len(parts) == 2:
        errors.extend(_prefix_errors(parts[0]))
    if not name:
        errors.append("name part must be non-empty")
    elif len(name.encode()) > _MAX_NAME_LENGTH:
        errors.append("name part " + _max_length_error(_MAX_NAME_LENGTH))
    if not _NAME_RE.match(name):
        errors.append("name part " + _regex_error(_NAME_ERR, _NAME_FMT, "MyName", "my.name", "123-abc"))
    return errors


def _prefix_errors(prefix: str) -> list[str]:
    if not prefix:
        return ["prefix part must be non-empty"]
    errors = []
    if len(prefix.encode()) > _MAX_PREFIX_LENGTH:
        errors.append("prefix part " + _max_length_error(_MAX_PREFIX_LENGTH))
    if not _DNS1123_SUBDOMAIN_RE.match(prefix):
        errors.append(
            "prefix part " + _regex_error(_DNS1123_SUBDOMAIN_ERR, _DNS1123_SUBDOMAIN_FMT, "example.com")
        )
    return errors


def label_value_errors(value: str) -> list[str]:
    """What is wrong with ``value`` as a label value; empty when it is valid."""
    errors = []
    if len(value.encode()) > _MAX_NAME_LENGTH:
        errors.append(_max_length_error(_MAX_NAME_LENGTH))
    if not _VALUE_RE.match(value):
        errors.append(_regex_error(_VALUE_ERR, _VALUE_FMT, "MyValue", "my_value", "12345"))
    return errors


def _go_quote(text: str) -> str:
    """Go's %q for the characters a selector can hold."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return f'"{escaped}"'


def _field_invalid(path: str, value: str, detail: str) -> str:
    return f"{path}: Invalid value: {_go_quote(value)}: {detail}"


def _aggregate(messages: list[str]) -> str:
    # Go's utilerrors.Aggregate: one message alone, several deduplicated inside brackets.
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def _parse_int64(text: str) -> int | None:
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    number = int(text)
    return number if _INT64_MIN <= number <= _INT64_MAX else None


# --------------------------------------------------------------------------------------------
# Label selectors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """One ``key <operator> values`` term of a label selector."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator in (Operator.IN, Operator.EQUALS, Operator.DOUBLE_EQUALS):
            return present and labels[self.key] in self.values
        if self.operator in (Operator.NOT_IN, Operator.NOT_EQUALS):
            # As in Kubernetes, a missing label is "not equal" to anything.
            return not present or labels[self.key] not in self.values
        if self.operator is Operator.EXISTS:
            return present
        if self.operator is Operator.DOES_NOT_EXIST:
            return not present
        return present and self._compare_numbers(labels[self.key])

    def _compare_numbers(self, label_value: str) -> bool:
        actual = _parse_int64(label_value)
        bound = _parse_int64(self.values[0]) if len(self.values) == 1 else None
        if actual is None or bound is None:
            return False
        return actual > bound if self.operator is Operator.GREATER_THAN else actual < bound

    def __str__(self) -> str:
        if self.operator is Operator.EXISTS:
            return self.key
        if self.operator is Operator.DOES_NOT_EXIST:
            return f"!{self.key}"
        joined = ",".join(sorted(self.values))
        if self.operator in (Operator.IN, Operator.NOT_IN):
            return f"{self.key} {self.operator.value} ({joined})"
        symbol = {Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}.get(self.operator, self.operator.value)
        return f"{self.key}{symbol}{joined}"


@dataclass(frozen=True)
class LabelSelector:
    """All requirements must match (logical AND); no requirement selects everything.

    ``selects_nothing`` is the selector a missing ``metav1.LabelSelector`` converts to.
    """

    requirements: tuple[Requirement, ...] = ()
    selects_nothing: bool = False

    @property
    def empty(self) -> bool:
        return not self.requirements and not self.selects_nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.selects_nothing:
            return False
        present = labels or {}
        return all(requirement.matches(present) for requirement in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


class _Token(Enum):
    END = "end of string"
    CLOSE_PAR = ")"
    COMMA = ","
    NOT = "!"
    DOUBLE_EQUALS = "=="
    EQUALS = "="
    GREATER_THAN = ">"
    IDENTIFIER = "identifier"
    IN = "in"
    LESS_THAN = "<"
    NOT_EQUALS = "!="
    NOT_IN = "notin"
    OPEN_PAR = "("


_SYMBOL_TOKENS = {
    ")": _Token.CLOSE_PAR,
    ",": _Token.COMMA,
    "!": _Token.NOT,
    "==": _Token.DOUBLE_EQUALS,
    "=": _Token.EQUALS,
    ">": _Token.GREATER_THAN,
    "<": _Token.LESS_THAN,
    "!=": _Token.NOT_EQUALS,
    "(": _Token.OPEN_PAR,
}
_KEYWORD_TOKENS = {"in": _Token.IN, "notin": _Token.NOT_IN}
_SPECIAL_CHARACTERS = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_OPERATOR_TOKENS = {
    _Token.IN: Operator.IN,
    _Token.NOT_IN: Operator.NOT_IN,
    _Token.EQUALS: Operator.EQUALS,
    _Token.DOUBLE_EQUALS: Operator.DOUBLE_EQUALS,
    _Token.NOT_EQUALS: Operator.NOT_EQUALS,
    _Token.GREATER_THAN: Operator.GREATER_THAN,
    _Token.LESS_THAN: Operator.LESS_THAN,
}


def _tokenize(text: str) -> list[tuple[_Token, str]]:
    tokens: list[tuple[_Token, str]] = []
    position = 0
    while True:
        while position < len(text) and text[position] in _WHITESPACE:
            position += 1
        if position >= len(text):
            tokens.append((_Token.END, ""))
            return tokens
        if text[position] in _SPECIAL_CHARACTERS:
            token, literal = _scan_symbol(text, position)
        else:
            token, literal = _scan_word(text, position)
        tokens.append((token, literal))
        position += len(literal)


def _scan_symbol(text: str, start: int) -> tuple[_Token, str]:
    # Longest run of special characters that still spells a known symbol ("!=", "==", ...).
    best = (_SYMBOL_TOKENS[text[start]], text[start])
    end = start + 1
    while end < len(text) and text[end] in _SPECIAL_CHARACTERS:
        candidate = text[start : end + 1]
        if candidate not in _SYMBOL_TOKENS:
            break
        best = (_SYMBOL_TOKENS[candidate], candidate)
        end += 1
    return best


def _scan_word(text: str, start: int) -> tuple[_Token, str]:
    end = start
    while end < len(text) and text[end] not in _SPECIAL_CHARACTERS | _WHITESPACE:
        end += 1
    word = text[start:end]
    return _KEYWORD_TOKENS.get(word, _Token.IDENTIFIER), word


class _SelectorSyntaxError(Exception):
    pass


class _LabelParser:
    """A recursive-descent parser with the same grammar, lookahead and messages as labels.Parse."""

    def __init__(self, text: str) -> None:
        self._tokens = _tokenize(text)
        self._position = 0

    def _lookahead(self, *, as_value: bool = True) -> tuple[_Token, str]:
        return self._as_context(self._tokens[self._position], as_value)

    def _consume(self, *, as_value: bool = True) -> tuple[_Token, str]:
        token = self._tokens[self._position]
        self._position += 1
        return self._as_context(token, as_value)

    @staticmethod
    def _as_context(token: tuple[_Token, str], as_value: bool) -> tuple[_Token, str]:
        # "in" and "notin" are operators only right after a key; elsewhere they are plain words.
        if as_value and token[0] in (_Token.IN, _Token.NOT_IN):
            return _Token.IDENTIFIER, token[1]
        return token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            token, literal = self._lookahead()
            if token is _Token.END:
                return requirements
            if token not in (_Token.IDENTIFIER, _Token.NOT):
                raise _SelectorSyntaxError(f"found '{literal}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self._requirement())
            except _SelectorSyntaxError as error:
                raise _SelectorSyntaxError(f"unable to parse requirement: {error}") from None
            token, literal = self._consume()
            if token is _Token.END:
                return requirements
            if token is not _Token.COMMA:
                raise _SelectorSyntaxError(f"found '{literal}', expected: ',' or 'end of string'")
            following, following_literal = self._lookahead()
            if following not in (_Token.IDENTIFIER, _Token.NOT):
                raise _SelectorSyntaxError(f"found '{following_literal}', expected: identifier after ','")

    def _requirement(self) -> Requirement:
        key, operator = self._key_and_inferred_operator()
        if operator is not None:
            return _new_requirement(key, operator, [])
        operator = self._operator()
        set_based = operator in (Operator.IN, Operator.NOT_IN)
        values = self._value_set() if set_based else self._exact_value()
        return _new_requirement(key, operator, sorted(values))

    def _key_and_inferred_operator(self) -> tuple[str, Operator | None]:
        negated = False
        token, literal = self._consume()
        if token is _Token.NOT:
            negated = True
            token, literal = self._consume()
        if token is not _Token.IDENTIFIER:
            raise _SelectorSyntaxError(f"found '{literal}', expected: identifier")
        if errors := label_key_errors(literal):
            raise _SelectorSyntaxError(_field_invalid("<nil>", literal, "; ".join(errors)))
        if negated:
            return literal, Operator.DOES_NOT_EXIST
        if self._lookahead()[0] in (_Token.END, _Token.COMMA):
            return literal, Operator.EXISTS
        return literal, None

    def _operator(self) -> Operator:
        token, literal = self._consume(as_value=False)
        if token not in _OPERATOR_TOKENS:
            raise _SelectorSyntaxError(f"found '{literal}', expected: {_BINARY_OPERATORS}")
        return _OPERATOR_TOKENS[token]

    def _value_set(self) -> set[str]:
        token, literal = self._consume()
        if token is not _Token.OPEN_PAR:
            raise _SelectorSyntaxError(f"found '{literal}' expected: '('")
        token, literal = self._lookahead()
        if token is _Token.CLOSE_PAR:
            self._consume()
            return {""}
        if token not in (_Token.IDENTIFIER, _Token.COMMA):
            raise _SelectorSyntaxError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self._identifier_list()
        if self._consume()[0] is not _Token.CLOSE_PAR:
            raise _SelectorSyntaxError(f"found '{literal}', expected: ')'")
        return values

    def _identifier_list(self) -> set[str]:
        # Empty entries ("(a,,b)", "(,a)", "(a,)") stand for the empty value, as upstream.
        values: set[str] = set()
        while True:
            token, literal = self._consume()
            if token is _Token.IDENTIFIER:
                values.add(literal)
                following, following_literal = self._lookahead()
                if following is _Token.CLOSE_PAR:
                    return values
                if following is not _Token.COMMA:
                    raise _SelectorSyntaxError(f"found '{following_literal}', expected: ',' or ')'")
            elif token is _Token.COMMA:
                if not values:
                    values.add("")
                following = self._lookahead()[0]
                if following is _Token.CLOSE_PAR:
                    values.add("")
                    return values
                if following is _Token.COMMA:
                    self._consume()
                    values.add("")
            else:
                raise _SelectorSyntaxError(f"found '{literal}', expected: ',', or identifier")

    def _exact_value(self) -> set[str]:
        if self._lookahead()[0] in (_Token.END, _Token.COMMA):
            return {""}
        token, literal = self._consume()
        if token is not _Token.IDENTIFIER:
            raise _SelectorSyntaxError(f"found '{literal}', expected: identifier")
        return {literal}


def _new_requirement(key: str, operator: Operator, values: list[str]) -> Requirement:
    """Checks a requirement the way NewRequirement does and builds it."""
    errors: list[str] = []
    if key_errors := label_key_errors(key):
        errors.append(_field_invalid("key", key, "; ".join(key_errors)))
    errors.extend(_operator_value_errors(operator, values))
    for index, value in enumerate(values):
        if value_errors := label_value_errors(value):
            path = f"values[{index}][{key}]"
            errors.append(_field_invalid(path, value, "; ".join(value_errors)))
    if errors:
        raise _SelectorSyntaxError(_aggregate(errors))
    return Requirement(key, operator, tuple(values))


def _operator_value_errors(operator: Operator, values: list[str]) -> list[str]:
    if operator in (Operator.IN, Operator.NOT_IN) and not values:
        return [_values_invalid(values, "for 'in', 'notin' operators, values set can't be empty")]
    if operator in _EXACT_OPERATORS and len(values) != 1:
        return [_values_invalid(values, "exact-match compatibility requires one single value")]
    if operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and values:
        return [_values_invalid(values, "values set must be empty for exists and does not exist")]
    if operator not in (Operator.GREATER_THAN, Operator.LESS_THAN):
        return []
    errors = []
    if len(values) != 1:
        errors.append(_values_invalid(values, "for 'Gt', 'Lt' operators, exactly one value is required"))
    errors.extend(
        _field_invalid(f"values[{index}]", value, "for 'Gt', 'Lt' operators, the value must be an integer")
        for index, value in enumerate(values)
        if _parse_int64(value) is None
    )
    return errors


def _values_invalid(values: list[str], detail: str) -> str:
    # field.Invalid renders a slice as JSON.
    return f"values: Invalid value: {json.dumps(values, separators=(',', ':'))}: {detail}"


def parse_label_selector(text: str) -> LabelSelector:
    """Parses a ``labelSelector`` query parameter; the empty string selects everything."""
    try:
        requirements = _LabelParser(text).parse()
    except _SelectorSyntaxError as error:
        raise bad_request(str(error)) from None
    return LabelSelector(tuple(sorted(requirements, key=lambda requirement: requirement.key)))


_MATCH_EXPRESSION_OPERATORS = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}


def label_selector_from_match(selector: Mapping[str, Any] | None) -> LabelSelector:
    """Converts a ``metav1.LabelSelector`` (matchLabels, matchExpressions) as LabelSelectorAsSelector.

    As upstream, ``None`` selects nothing and ``{}`` (no labels, no expressions) selects everything.
    """
    if selector is None:
        return LabelSelector(selects_nothing=True)
    if not selector:
        return LabelSelector()
    requirements = [
        _requirement_or_bad_request(key, Operator.EQUALS, [str(value)])
        for key, value in (selector.get("matchLabels") or {}).items()
    ]
    requirements.extend(_match_expression(expression) for expression in _expressions(selector))
    return LabelSelector(tuple(sorted(requirements, key=lambda requirement: requirement.key)))


def _expressions(selector: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    return selector.get("matchExpressions") or []


def _match_expression(expression: Mapping[str, Any]) -> Requirement:
    operator_name = expression.get("operator")
    operator = _MATCH_EXPRESSION_OPERATORS.get(str(operator_name))
    if operator is None:
        raise bad_request(f"{_go_quote(str(operator_name))} is not a valid label selector operator")
    values = [str(value) for value in expression.get("values") or []]
    if operator in (Operator.IN, Operator.NOT_IN):
        values = sorted(set(values))
    return _requirement_or_bad_request(str(expression.get("key", "")), operator, values)


def _requirement_or_bad_request(key: str, operator: Operator, values: list[str]) -> Requirement:
    try:
        return _new_requirement(key, operator, values)
    except _SelectorSyntaxError as error:
        raise bad_request(str(error)) from None


# --------------------------------------------------------------------------------------------
# Field selectors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRequirement:
    """``field=value`` or ``field!=value`` (``==`` is stored as ``=``)."""

    field: str
    value: str
    negated: bool = False

    def matches(self, obj: Mapping[str, Any]) -> bool:
        equal = field_value(obj, self.field) == self.value
        return not equal if self.negated else equal

    def __str__(self) -> str:
        return f"{self.field}{'!=' if self.negated else '='}{self.value}"


@dataclass(frozen=True)
class FieldSelector:
    """All requirements must match (logical AND); no requirement selects everything."""

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(requirement.matches(obj) for requirement in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The value at a dotted path such as ``spec.nodeName``, as the field selector compares it.

    A missing value compares as "" and booleans as "true"/"false", like the fields sets the
    registries build for selection.
    """
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return ""
        current = current[part]
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


_TERM_OPERATORS = ("!=", "==", "=")


def parse_field_selector(text: str, supported: Collection[str]) -> FieldSelector:
    """Parses a ``fieldSelector`` query parameter against the fields a resource supports."""
    requirements = []
    for term in sorted(_split_terms(text)):
        if not term:
            continue
        requirements.append(_field_requirement(text, term))
    for requirement in requirements:
        if requirement.field not in supported:
            raise bad_request(f"field label not supported: {requirement.field}")
    return FieldSelector(tuple(requirements))


def _split_terms(text: str) -> list[str]:
    # Commas split terms unless escaped with a backslash.
    terms: list[str] = []
    start = 0
    escaped = False
    for index, character in enumerate(text):
        if escaped:
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == ",":
            terms.append(text[start:index])
            start = index + 1
    terms.append(text[start:])
    return terms


def _field_requirement(selector: str, term: str) -> FieldRequirement:
    for index in range(len(term)):
        for operator in _TERM_OPERATORS:
            if term.startswith(operator, index):
                field = term[:index]
                value = _unescape_value(term[index + len(operator) :])
                return FieldRequirement(field, value, negated=operator == "!=")
    raise bad_request(f"invalid selector: '{selector}'; can't understand '{term}'")


def _unescape_value(value: str) -> str:
    unescaped: list[str] = []
    escaped = False
    for character in value:
        if escaped:
            if character not in "\\,=":
                raise _invalid_escape("\\" + character)
            unescaped.append(character)
            escaped = False
        elif character == "\\":
            escaped = True
        elif character in ",=":
            raise bad_request(f"invalid field selector: unescaped character in value: {character}")
        else:
            unescaped.append(character)
    if escaped:
        raise _invalid_escape("\\")
    return "".join(unescaped)


def _invalid_escape(sequence: str) -> ApiError:
    return bad_request(f"invalid field selector: invalid escape sequence: {sequence}")
