"""meshbot's wheel and image carry meshbot only: the playground is a distribution of its own."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.cli.playground import NOT_INSTALLED

ROOT = Path(__file__).resolve().parents[1]
# Left behind by earlier builds or runs; a stale build/lib/playground would end up in the wheel.
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", ".demo", "meshbot.db*"
)

# Building without isolation reuses the venv's setuptools: a second or two, no index needed.
pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    # Built from a copy, as a fresh clone would be, playground/ included, so the exclusion is tested.
    source = tmp_path_factory.mktemp("source") / "meshbot"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            ".",
        ],
        cwd=source,
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("meshbot-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


# Every floor of docs/architecture.md, which the wheel and the image must both carry.
PACKAGES = ("core", "mesh", "domain", "handlers", "bot", "migrations")


def test_wheel_has_meshbot(wheel_files: list[str]) -> None:
    assert "bot/cli/__init__.py" in wheel_files
    assert "bot/cli/data/demo-policy.yaml" in wheel_files  # `meshbot demo` after `pip install`
    assert {name.split("/")[0] for name in wheel_files if not name.startswith("meshbot-")} == set(PACKAGES)


def test_image_copies_every_package_that_exists() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    copied = [line.split()[1] for line in lines if line.startswith("COPY") and "--from" not in line]
    assert set(PACKAGES) <= set(copied)
    assert [path for path in copied if not (ROOT / path).exists()] == []


def test_wheel_has_no_playground(wheel_files: list[str]) -> None:
    assert [name for name in wheel_files if name.startswith("playground/")] == []


def test_image_copies_no_playground() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    assert [line for line in lines if line.startswith(("COPY", "ADD")) and "playground" in line] == []


@pytest.mark.parametrize("command", [["demo"], ["playground", "--port", "0"]])
def test_cli_without_playground_says_so(command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import playground` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "playground", None)
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 1
    assert result.output.strip() == NOT_INSTALLED


def test_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    linted = subprocess.run([str(hadolint), str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert linted.returncode == 0, linted.stdout


def test_runtime_stage_is_slim_non_root_and_gets_only_built_artifacts() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    stages = [i for i, line in enumerate(lines) if line.startswith("FROM ")]
    runtime = lines[stages[-1] :]
    assert runtime[0].startswith("FROM python:3.11-slim")
    # Sources and build tools stay in earlier stages; only wheels (bind-mounted) and istioctl arrive.
    assert [line for line in runtime if line.startswith(("COPY", "ADD")) and "--from=" not in line] == []
    user = [line.split()[1] for line in runtime if line.startswith("USER ")]
    assert user and not user[-1].startswith(("0", "root"))
    assert any(line.startswith("ARG ISTIOCTL_VERSION") for line in lines)
