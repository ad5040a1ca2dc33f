"""`meshbot <command>` imports only what that command uses (bot/cli/__init__.py loads subcommands
lazily). A regression guard on what is imported, not a timing: each heavy package named here once
cost a CLI start-up tenths of a second (bench/startup.py measures the time itself)."""

from __future__ import annotations

import subprocess
import sys

import pytest

SERVICE_ONLY = ("fastapi", "uvicorn", "starlette", "slack_bolt", "slack_sdk", "matplotlib")
HEAVY = (*SERVICE_ONLY, "prometheus_api_client", "kubernetes", "sqlalchemy", "alembic", "pydantic")


def imported(module: str, watched: tuple[str, ...]) -> list[str]:
    probe = f"import sys, {module}; print(' '.join(m for m in {watched!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_importing_the_cli_imports_no_subcommand() -> None:
    assert imported("bot.cli", HEAVY) == []


@pytest.mark.parametrize("module", ["bot.cli.run", "bot.cli.store", "bot.cli.reap"])
def test_terminal_commands_import_nothing_of_the_service(module: str) -> None:
    # Nor alembic: a schema already at head is recognised with one plain read.
    assert imported(module, (*SERVICE_ONLY, "alembic")) == []
