"""Settings for a terminal command: a bad one is a line naming the variable, its value and what it
accepts, never pydantic's multi-line report."""

from __future__ import annotations

from typing import Any

import typer
from pydantic import AliasChoices, ValidationError

from core.settings import Settings

EXIT_CONFIG = 1

_BOOLEANS = "true or false (also 1/0, yes/no, on/off)"


def load_settings(**values: Any) -> Settings:
    """Settings from the environment (and ``values``); exits 1 with one line per problem."""
    try:
        return Settings(**values)
    except ValidationError as exc:
        for problem in setting_problems(exc):
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None


def setting_problems(exc: ValidationError) -> list[str]:
    return [_problem(error) for error in exc.errors()]


def _problem(error: Any) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    variable = variable_of(field)
    # A secret is never echoed, even a malformed one: it may be the real secret mistyped.
    hidden = _is_secret(field)
    given = f"{variable} (value hidden)" if hidden else f"{variable}={_shown(error.get('input'))}"
    return f"{given} {_what_is_wrong(error)}"


def variable_of(field: str) -> str:
    """The environment variable a setting is read from (Slack's own names carry no prefix)."""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    if isinstance(alias, str):
        return alias
    return f"MESHBOT_{field.upper()}"


def _is_secret(field: str) -> bool:
    info = Settings.model_fields.get(field)
    if info is None:
        return True
    return "SecretStr" in str(info.annotation)


def _shown(value: object) -> str:
    text = str(value)
    return repr(text[:40] + "…") if len(text) > 40 else (text or "''")


def _what_is_wrong(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "literal_error":
        return f"is not allowed: use {ctx.get('expected', '')}"
    if kind == "bool_parsing":
        return f"is not a yes/no value: use {_BOOLEANS}"
    if kind == "int_parsing":
        return "is not a whole number: use digits, e.g. 3000"
    if kind == "float_parsing":
        return "is not a number: use e.g. 30 or 2.5"
    bounds = {
        "greater_than": "more than",
        "greater_than_equal": "at least",
        "less_than": "less than",
        "less_than_equal": "at most",
    }
    if kind in bounds:
        limit = next(iter(ctx.values()), "")
        return f"is out of range: use a value {bounds[kind]} {limit}"
    return f"is not valid: {error['msg']}"
