"""`meshbot <command>` imports only what that command uses (bot/cli/__init__.py loads subcommands
lazily). A regression guard on what is imported, not a timing: each heavy package named here once
cost a CLI start-up tenths of a second (bench/startup.py measures the time itself)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


# What `meshbot run help` once imported and never uses: every verb's module came with the pipeline,
# and through them the Kubernetes client (~0.5 s with urllib3), matplotlib and PIL (graph), the
# HTTP clients of telemetry, prompt_toolkit (chat) and the lifecycle's scheduler.
NOT_FOR_HELP = (
    *SERVICE_ONLY,
    "kubernetes",
    "urllib3",
    "PIL",
    "requests",
    "prometheus_api_client",
    "prometheus_client",
    "prompt_toolkit",
    "handlers.fault",
    "handlers.graph",
    "domain.ending",
    "bot.lifecycle",
)


def test_run_help_imports_no_verb_but_help_and_nothing_of_the_cluster(tmp_path: Path) -> None:
    # The command runs for real, audit row included; a kubeconfig that is not there proves no
    # cluster is reached (the pipeline connects when a verb first needs one).
    env = {
        **os.environ,
        "KUBECONFIG": str(tmp_path / "no-such-kubeconfig"),
        "MESHBOT_DATABASE_URL": f"sqlite:///{tmp_path}/help.db",
        "MESHBOT_AUTO_MIGRATE": "true",
    }
    probe = (
        "import sys\n"
        "from bot.cli import app\n"
        "try:\n"
        "    app(['run', 'help'])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        f"print('imported:', *(m for m in {NOT_FOR_HELP!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert "`help [<verb>]`" in out.stdout
    assert out.stdout.splitlines()[-1].split() == ["imported:"]
