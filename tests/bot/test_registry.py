"""The verb registry: every verb declares its rules for every form of its command, a module without
rules cannot be registered, and help lists every verb."""

from __future__ import annotations

import shlex
from types import ModuleType
from typing import Any

import pytest

from handlers import VERBS, fault, help
from handlers.registry import Declared, MissingRules, Registry, register
from handlers.verb import Access, Everywhere, Namespace

from .conftest import NS, context

# One example of every form of every verb's command. A verb added to the registry must add its
# forms here, so nobody can register a verb whose rules were never called.
FORMS: dict[str, tuple[str, ...]] = {
    "help": ("", "fault"),
    "status": ("", NS),
    "summary": ("", f"web-svc.{NS} window=1h", f"-n {NS}"),
    "graph": ("", f"-n {NS} window=30m"),
    "use": (NS,),
    "install": ("", "profile=demo --dry-run"),
    "uninstall": ("",),
    "inject": (f"{NS} --restart",),
    "uninject": (NS,),
    "expose": (f"web-svc.{NS} host=web.test",),
    "unexpose": ("web.test",),
    "fault": (
        f"delay 3s web-svc.{NS}",
        f"abort 500 web-svc.{NS} 50%",
        "list",
        "extend exp-7f3a 10m",
        "clear exp-7f3a",
        f"clear web-svc.{NS}",
        "clear all",
    ),
    "mtls": ("", f"strict {NS}"),
    "dashboard": ("", "grafana"),
    "audit": ("", "since=1h"),
    "schedule": (f'"fault delay 3s web-svc.{NS}" at +1h',),
    "schedules": ("", "all"),
    "unschedule": ("sch-1a2b",),
    "pause": ("sch-1a2b",),
    "resume": ("sch-1a2b",),
    "skip": ("sch-1a2b",),
    "postpone": ("sch-1a2b by=2h",),
}


def test_every_registered_verb_has_its_forms_listed_here() -> None:
    assert set(FORMS) == set(VERBS)


@pytest.mark.parametrize(("verb", "args"), [(verb, args) for verb, forms in FORMS.items() for args in forms])
def test_every_form_of_every_verb_declares_its_rules(verb: str, args: str) -> None:
    command = VERBS[verb].parse_args(shlex.split(args))
    access = VERBS[verb].rules(command)
    assert isinstance(access, Access)
    assert access.read_only or access.where is not None


def test_the_record_is_the_module_and_its_rules() -> None:
    record = VERBS["fault"]
    assert record.module is fault and record.rules is fault.rules
    assert (record.VERB, record.USAGE) == ("fault", fault.USAGE)


def test_every_verb_module_says_what_the_registry_declares_of_it() -> None:
    # `help` reads the declarations without importing the modules: they must not drift apart.
    VERBS.load_all()
    for verb, record in VERBS.items():
        assert (
            verb,
            record.HELP,
            record.USAGE,
        ) == (record.module.VERB, record.module.HELP, record.module.USAGE)


def test_a_declaration_its_module_contradicts_is_refused_when_the_verb_first_runs() -> None:
    verbs = Registry()
    verbs.fill((Declared("help", "an outdated line", help.USAGE, "handlers.help"),))
    assert verbs["help"].HELP == "an outdated line"
    with pytest.raises(TypeError, match="make them agree"):
        verbs["help"].parse_args([])


def verb_module(name: str, **declared: Any) -> ModuleType:
    module = ModuleType(f"handlers.{name}")
    module.VERB = name  # type: ignore[attr-defined]
    module.HELP = "a verb only this test knows"  # type: ignore[attr-defined]
    module.USAGE = name  # type: ignore[attr-defined]
    module.parse_args = lambda args: tuple(args)  # type: ignore[attr-defined]
    module.handle = lambda command, ctx: None  # type: ignore[attr-defined]
    for key, value in declared.items():
        setattr(module, key, value)
    return module


def test_a_verb_without_rules_cannot_be_registered() -> None:
    with pytest.raises(MissingRules, match=r"handlers\.later declares no `rules\(command\) -> Access`"):
        register(verb_module("later"))
    with pytest.raises(MissingRules):
        Registry().fill((verb_module("later"),))


def test_a_registry_is_filled_once_and_holds_one_module_per_verb() -> None:
    reads = verb_module("look", rules=lambda command: Access(role="viewer", read_only=True))
    with pytest.raises(ValueError, match="two modules register the verb 'look'"):
        Registry().fill((reads, reads))
    verbs = Registry()
    verbs.fill((reads,))
    assert list(verbs) == ["look"]
    with pytest.raises(RuntimeError):
        verbs.fill((reads,))


def test_rules_that_change_something_must_say_where() -> None:
    with pytest.raises(TypeError, match="must say where"):
        Access(role="operator")
    with pytest.raises(TypeError, match="for admins"):
        Access(role="operator", where=Everywhere("it touches every namespace"))
    with pytest.raises(TypeError, match="neither starts nor stops"):
        Access(role="viewer", read_only=True, exempt_from_two_person=True)
    assert Access(role="operator", where=Namespace(None)).where == Namespace(None)


def test_help_lists_every_verb_and_the_form_of_each() -> None:
    listing = help.handle(help.HelpCommand(None), context("help")).text
    for verb, record in VERBS.items():
        assert f"• `{record.USAGE}` — {record.HELP}" in listing, verb
        one = help.handle(help.parse_args([verb]), context(f"help {verb}")).text
        assert one == f"{verb}: {record.HELP}\nUsage: /mesh {record.USAGE}"
