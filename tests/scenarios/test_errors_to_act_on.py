"""Start-up and configuration errors as one line naming what is wrong and what to do (issue 14):
kubeconfig files, settings, an unreachable API server; and `audit` needing no cluster at all."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.scenarios.conftest import NS, Meshbot

FIX = "fix it, or point KUBECONFIG at a working one"


def one_line_error(result_stderr: str) -> str:
    lines = result_stderr.splitlines()
    assert len(lines) == 1, result_stderr
    assert "Traceback" not in result_stderr
    return lines[0]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("apiVersion: v1\nclusters: [\n", "is not valid YAML at line 3; "),
        ("just a string\n", "is not a usable kubeconfig (TypeError: "),
        (
            "apiVersion: v1\nkind: Config\nclusters: []\n",
            ": Invalid kube-config file. Expected key current-context",
        ),
    ],
    ids=["not-yaml", "not-a-kubeconfig", "no-current-context"],
)
def test_a_broken_kubeconfig_is_named_in_one_line(meshbot: Meshbot, content: str, expected: str) -> None:
    broken = meshbot.tmp / "broken-kubeconfig"
    broken.write_text(content)
    meshbot.env["KUBECONFIG"] = str(broken)

    result = meshbot.run(f"status {NS}")

    assert result.exit_code == 1
    line = one_line_error(result.stderr)
    assert line.startswith(f"status failed: KUBECONFIG={broken}")
    assert expected in line and FIX in line


def test_a_missing_kubeconfig_names_the_path(meshbot: Meshbot) -> None:
    missing = meshbot.tmp / "no-such-dir" / "kubeconfig"
    meshbot.env["KUBECONFIG"] = str(missing)
    result = meshbot.run("status")
    assert result.exit_code == 1
    assert one_line_error(result.stderr) == (
        f"status failed: KUBECONFIG={missing}: no such file {missing}; {FIX} "
        "(`kubectl config view` reads the same files)"
    )


def test_no_configuration_at_all_says_where_it_looked(meshbot: Meshbot) -> None:
    del meshbot.env["KUBECONFIG"]
    home = meshbot.tmp / "home"
    home.mkdir()
    meshbot.env.update(HOME=str(home), KUBERNETES_SERVICE_HOST="")
    result = meshbot.run("status")
    assert result.exit_code == 1
    assert one_line_error(result.stderr) == (
        f"status failed: no kubeconfig found (KUBECONFIG unset, {home}/.kube/config missing) and not "
        "running in a pod: set KUBECONFIG to a kubeconfig file, or try `meshbot demo` for a playground"
    )


def test_audit_needs_no_cluster(meshbot: Meshbot) -> None:
    meshbot.ok("status")
    meshbot.env["KUBECONFIG"] = str(meshbot.tmp / "gone")
    result = meshbot.run("audit")
    assert result.exit_code == 0, result.output
    assert "`status` → ok" in result.stdout


def test_an_unreachable_api_server_is_named_by_its_url(meshbot: Meshbot) -> None:
    url = meshbot.pg.url
    meshbot.pg.stop()
    result = meshbot.run(f"status {NS}")
    assert result.exit_code == 1
    line = one_line_error(result.stderr)
    assert f"the Kubernetes API server at {url} is unreachable" in line, line
    assert "check that it runs and that the kubeconfig's server URL is right" in line


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"MESHBOT_INSTALLER": "helm"},
            ["error: MESHBOT_INSTALLER=helm is not allowed: use 'istioctl' or 'job'"],
        ),
        (
            {"MESHBOT_AUTO_MIGRATE": "maybe", "MESHBOT_PORT": "0"},
            [
                "error: MESHBOT_AUTO_MIGRATE=maybe is not a yes/no value: "
                "use true or false (also 1/0, yes/no, on/off)",
                "error: MESHBOT_PORT=0 is out of range: use a value at least 1",
            ],
        ),
        (
            {"MESHBOT_AUDIT_KEY": "x", "MESHBOT_LIFECYCLE_WORKERS": "many"},
            ["error: MESHBOT_LIFECYCLE_WORKERS=many is not a whole number: use digits, e.g. 3000"],
        ),
    ],
    ids=["literal", "bool-and-bound", "integer"],
)
@pytest.mark.parametrize("command", [["run", "status"], ["audit"], ["migrate"]])
def test_a_bad_setting_names_variable_value_and_allowed_values(
    meshbot: Meshbot, env: dict[str, str], expected: list[str], command: list[str]
) -> None:
    meshbot.env.update(env)
    before = Path(meshbot.database_url.removeprefix("sqlite:///")).read_bytes()
    result = meshbot.cli(*command)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == expected
    assert Path(meshbot.database_url.removeprefix("sqlite:///")).read_bytes() == before


def test_playground_refuses_a_kubeconfig_it_cannot_write_before_serving(tmp_path: Path) -> None:
    in_the_way = tmp_path / "kubeconfigs"
    in_the_way.write_text("a file where a folder should be\n")
    target = in_the_way / "no" / "such" / "dir" / "kc"
    result = CliRunner().invoke(app, ["playground", "--kubeconfig", str(target)])
    assert result.exit_code == 2
    assert one_line_error(result.stderr) == (
        f"error: cannot write the kubeconfig to {target}: {in_the_way} is a file, not a folder; "
        "pick another --kubeconfig"
    )
    assert in_the_way.read_text() == "a file where a folder should be\n"


def test_version_and_help_say_what_meshbot_is() -> None:
    runner = CliRunner()
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0
    assert re.fullmatch(r"meshbot [0-9]+\.[0-9]+\.[0-9]+\n", version.stdout)
    helped = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert helped.exit_code == 0
    description = helped.stdout.split("COMMAND [ARGS]...", 1)[1].lstrip(" \n")
    assert description.startswith("meshbot: ChatOps for Istio on Kubernetes."), description
    assert "composition" not in helped.stdout and "Typer" not in helped.stdout
