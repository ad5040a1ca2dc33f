"""The shared vocabulary of /mesh commands: words, names, durations, percentages, targets.

Everything a user types is checked here before it can reach the cluster; each error says what was
wrong and the verb adds the right form.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from core.durations import DurationError as ParseError
from core.durations import duration

__all__ = ["ParseError", "duration"]

# Used with fullmatch only: `$` also matches before a trailing newline, so `web-svc\n` would pass.
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(
    r"(?=.{1,253}\Z)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)
# ASCII digits: float() also reads `５０`, `1_0` and `1e2`, none of which a person means as 50%.
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")


# No command meshbot knows comes near this; shlex grows a word one character at a time
# (quadratic), so a 1 MB word held a command worker for ~20 s of CPU before being refused.
MAX_COMMAND_CHARS = 8192


def words(text: str) -> list[str]:
    """Splits a command like a shell would split words — quotes group — without running anything."""
    if len(text) > MAX_COMMAND_CHARS:
        raise ParseError(
            f"the command is {len(text)} characters long; meshbot reads at most {MAX_COMMAND_CHARS}"
        )
    try:
        return shlex.split(text, posix=True)
    except ValueError as exc:
        raise ParseError(f"cannot read the command: {exc} (check the quotes)") from None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` — did you mean `x`?` for the nearest choice to a typo, or nothing when none is near."""
    close = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return f" — did you mean `{close[0]}`?" if close else ""


def percentage(text: str) -> float:
    """`50%` or `50` or `0.5%`: a percentage in (0, 100]."""
    raw = text[:-1] if text.endswith("%") else text
    sign, digits = ("-", raw[1:]) if raw.startswith("-") else ("", raw)
    if not _DECIMAL.fullmatch(digits) and digits.lower() != "nan":
        raise ParseError(f"percentage {text!r} is not a number like 50%")
    value = float(sign + digits)
    if not 0 < value <= 100:
        raise ParseError(f"percentage {text!r} must be more than 0% and at most 100%")
    return value


def whole_number(text: str, *, what: str, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high``, in ASCII digits: str.isdigit() also takes `⁵⁰⁰`,
    which int() refuses, and int() refuses more than 4300 digits."""
    if not re.fullmatch(r"[0-9]+", text) or len(text) > len(str(high)) or not low <= int(text) <= high:
        raise ParseError(f"{what} {text!r} must be a number from {low} to {high}")
    return int(text)


def is_percentage(text: str) -> bool:
    """Whether a word is meant as a percentage: `percentage` then says what is wrong with `-5%`."""
    return len(text) > 1 and text.endswith("%")


def name(text: str, *, what: str) -> str:
    """A Kubernetes object name that must be a DNS-1123 label (namespaces, services)."""
    if not DNS1123_LABEL.fullmatch(text):
        raise ParseError(
            f"{what} {text!r} is not a valid name: use at most 63 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return text


def hostname(text: str) -> str:
    if not DNS1123_SUBDOMAIN.fullmatch(text):
        raise ParseError(
            f"host {text!r} is not a valid DNS name: use lower-case letters, digits, '-' and '.', "
            "e.g. emoji-istio.test.net"
        )
    return text


def options(args: list[str], known: set[str]) -> tuple[dict[str, str], list[str]]:
    """Splits `key=value` words the verb knows from the rest; an unknown key is an error."""
    found: dict[str, str] = {}
    rest: list[str] = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and key.isidentifier():
            if key not in known:
                listed = f"; known options: {', '.join(sorted(known)) or 'none'}"
                hint = did_you_mean(f"{key}=", {f"{k}=" for k in known}) or listed
                raise ParseError(f"unknown option {key}={hint}")
            if key in found:
                raise ParseError(f"option {key}= given twice")
            found[key] = value
        else:
            rest.append(arg)
    return found, rest


def flags(args: list[str], known: set[str]) -> tuple[set[str], list[str]]:
    """Splits `--flag` words the verb knows from the rest; an unknown flag is an error."""
    found: set[str] = set()
    rest: list[str] = []
    for arg in args:
        if arg.startswith("--"):
            if arg not in known:
                hint = did_you_mean(arg, known) or f"; known flags: {', '.join(sorted(known)) or 'none'}"
                raise ParseError(f"unknown flag {arg}{hint}")
            found.add(arg)
        else:
            rest.append(arg)
    return found, rest


@dataclass(frozen=True)
class ServiceRef:
    service: str
    namespace: str | None  # None: the channel's default namespace


def service_ref(args: list[str]) -> tuple[ServiceRef | None, list[str]]:
    """Takes `-n <namespace>` from args and returns it with the remaining words; the caller then
    reads `<service>` or `<service>.<namespace>` with `service_word`."""
    namespace = None
    rest: list[str] = []
    i = 0
    while i < len(args):
        if args[i] in ("-n", "--namespace"):
            if i + 1 >= len(args):
                raise ParseError("-n needs a namespace after it")
            namespace = name(args[i + 1], what="namespace")
            i += 2
            continue
        rest.append(args[i])
        i += 1
    return (ServiceRef("", namespace) if namespace else None), rest


# What Kubernetes DNS appends to `<service>.<namespace>`: people paste the whole name.
_SERVICE_DNS_SUFFIXES = (".svc.cluster.local", ".svc")


def service_word(word: str, namespace_flag: ServiceRef | None) -> ServiceRef:
    """`web-svc`, `web-svc.emojivoto-istio` or its FQDN `web-svc.emojivoto-istio.svc.cluster.local`
    (with `-n` as an alternative for the namespace)."""
    for suffix in _SERVICE_DNS_SUFFIXES:
        if word.endswith(suffix) and word.count(".") == suffix.count(".") + 1:
            word = word.removesuffix(suffix)
            break
    service, dot, namespace = word.partition(".")
    service = name(service, what="service")
    if dot:
        namespace = name(namespace, what="namespace")
        if namespace_flag and namespace_flag.namespace != namespace:
            raise ParseError(f"{word} names namespace {namespace} but -n says {namespace_flag.namespace}")
        return ServiceRef(service, namespace)
    return ServiceRef(service, namespace_flag.namespace if namespace_flag else None)
