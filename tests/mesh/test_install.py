"""Installing Istio with istioctl (the stand-in on PATH) or as a Job, against the playground."""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from mesh.install import (
    AlreadyInstalled,
    InstallerUnavailable,
    InstallOptionError,
    InstallStatus,
    IstioctlInstaller,
    JobInstaller,
    NotInstalled,
    control_plane_status,
    image_version,
    install_args,
    installer_job_manifest,
    make_installer,
    uninstall_args,
    wait_for_job,
)
from mesh.kube import Kube, for_url
from playground.runner import Playground

STAND_IN_BIN = Path(__file__).resolve().parents[1] / "support" / "bin"
DEMO_COMPONENTS = ("istiod", "istio-ingressgateway", "istio-egressgateway")


@pytest.fixture
def bare(make_playground: Callable[..., Playground]) -> Playground:
    return make_playground("article-bare")


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in istioctl first on PATH; returns the file it records its arguments in."""
    path = tmp_path / "istioctl-calls.jsonl"
    monkeypatch.setenv("PATH", f"{STAND_IN_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("ISTIOCTL_RECORD", str(path))
    return path


def kube_for(pg: Playground, monkeypatch: pytest.MonkeyPatch) -> Iterator[Kube]:
    monkeypatch.setenv("PLAYGROUND_URL", pg.url)
    kube = for_url(pg.url)
    yield kube
    kube.close()


@pytest.fixture
def bare_kube(bare: Playground, monkeypatch: pytest.MonkeyPatch) -> Iterator[Kube]:
    yield from kube_for(bare, monkeypatch)


@pytest.fixture
def article_kube(playground: Playground, monkeypatch: pytest.MonkeyPatch) -> Iterator[Kube]:
    yield from kube_for(playground, monkeypatch)


def recorded(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [json.loads(line)["args"] for line in path.read_text().splitlines()]


def writes(pg: Playground) -> list[str]:
    return [f"{r.method} {r.path}" for r in pg.hooks.requests if r.method != "GET"]


def fake_istioctl(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-istioctl"
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    script.chmod(0o755)
    return str(script)


# ----------------------------------------------------------------- pure parts


def test_install_args_are_exactly_what_the_write_up_runs() -> None:
    assert install_args("demo") == ("install", "--set", "profile=demo", "-y")
    assert install_args("minimal", "1-24-2") == (
        "install",
        "--set",
        "profile=minimal",
        "-y",
        "--set",
        "revision=1-24-2",
    )
    assert uninstall_args() == ("uninstall", "--purge", "-y")
    assert uninstall_args("canary") == ("uninstall", "--revision", "canary", "-y")


BAD_OPTIONS = [
    ("Demo", None, "unknown Istio profile 'Demo': choose one of demo, default, minimal, ambient, empty"),
    ("demo -y --set values.x=1", None, "unknown Istio profile"),
    ("", None, "unknown Istio profile ''"),
    ("demo", "Canary", "revision 'Canary' is not a valid name"),
    ("demo", "-y", "revision '-y' is not a valid name"),
    ("demo", "canary --set x=y", "is not a valid name"),
    ("demo", "a" * 64, "is not a valid name"),
]


def test_bad_profile_or_revision_is_refused_before_anything_runs(
    bare: Playground, bare_kube: Kube, record: Path
) -> None:
    bare.hooks.requests.clear()
    for profile, revision, message in BAD_OPTIONS:
        for installer in (IstioctlInstaller(bare_kube), JobInstaller(bare_kube)):
            with pytest.raises(InstallOptionError, match=re.escape(message)):
                installer.install(profile, revision)
    with pytest.raises(InstallOptionError, match="revision 'A' is not a valid name"):
        IstioctlInstaller(bare_kube).uninstall("A")
    assert recorded(record) == []
    assert bare.hooks.requests == []


def test_image_version_reads_the_tag() -> None:
    assert image_version("docker.io/istio/pilot:1.24.2") == "1.24.2"
    assert image_version("localhost:5000/istio/pilot") is None
    assert image_version("localhost:5000/istio/pilot:1.23.0@sha256:abc") == "1.23.0"
    assert image_version("istio/pilot@sha256:abc") is None


def test_make_installer_chooses_by_setting(bare_kube: Kube) -> None:
    assert isinstance(make_installer("istioctl", bare_kube, binary="x"), IstioctlInstaller)
    assert isinstance(make_installer("job", bare_kube, namespace="ops"), JobInstaller)
    with pytest.raises(InstallOptionError, match="unknown installer 'helm'"):
        make_installer("helm", bare_kube)  # type: ignore[arg-type]


# ----------------------------------------------------------------- istioctl subprocess


def test_istioctl_install_on_a_bare_cluster(bare_kube: Kube, record: Path) -> None:
    assert not control_plane_status(bare_kube).installed
    progress: list[str] = []

    result = IstioctlInstaller(bare_kube).install("demo", on_progress=progress.append)

    assert recorded(record) == [["install", "--set", "profile=demo", "-y"]]
    assert result.status is InstallStatus.SUCCEEDED and result.succeeded
    assert result.exit_code == 0
    assert result.command == "istioctl install --set profile=demo -y"
    assert progress == result.output.splitlines()
    assert progress[0] == "✔ Istio core installed ⛵️"
    assert progress[-1] == "✔ Installation complete"

    plane = control_plane_status(bare_kube)
    assert plane.installed and plane.ready
    assert plane.version == "1.24.2"
    assert [c.name for c in plane.components] == ["istiod", "istio-egressgateway", "istio-ingressgateway"]
    assert all(c.ready_text == "1/1" for c in plane.components)
    assert plane.ingress is not None
    assert plane.ingress.external_addresses == ("172.2.0.201",)
    assert plane.ingress.node_port(80) == 30080


def test_istioctl_gets_the_configured_kubeconfig_and_context(
    bare_kube: Kube, bare: Playground, record: Path, tmp_path: Path
) -> None:
    kubeconfig = bare.kubeconfig(tmp_path / "kubeconfig")
    installer = IstioctlInstaller(bare_kube, kubeconfig=str(kubeconfig), context="playground")

    planned = installer.install("minimal", "canary", dry_run=True)
    assert planned.status is InstallStatus.PLANNED
    assert planned.runner == (
        "would run: istioctl install --set profile=minimal -y --set revision=canary "
        f"--kubeconfig {kubeconfig} --context playground"
    )
    assert recorded(record) == []

    installer.install("minimal", "canary")
    assert recorded(record) == [
        [
            "install",
            "--set",
            "profile=minimal",
            "-y",
            "--set",
            "revision=canary",
            "--kubeconfig",
            str(kubeconfig),
            "--context",
            "playground",
        ]
    ]


def test_dry_run_changes_nothing(bare: Playground, bare_kube: Kube, record: Path) -> None:
    bare.hooks.requests.clear()
    result = IstioctlInstaller(bare_kube).install("demo", dry_run=True)
    assert result.status is InstallStatus.PLANNED and not result.succeeded
    assert result.runner == "would run: istioctl install --set profile=demo -y"
    assert recorded(record) == []
    assert writes(bare) == []
    assert not control_plane_status(bare_kube).installed


def test_failing_istioctl_is_reported_with_its_error(
    bare_kube: Kube, record: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stand-in cannot reach its cluster: istioctl prints an error and exits 1.
    monkeypatch.setenv("PLAYGROUND_URL", "http://127.0.0.1:9")
    progress: list[str] = []

    result = IstioctlInstaller(bare_kube).install("demo", on_progress=progress.append)

    assert result.status is InstallStatus.FAILED and not result.succeeded
    assert result.exit_code == 1
    assert result.detail.startswith("istioctl install exited with code 1: Error: cannot reach the cluster")
    assert progress and progress[0].startswith("Error: cannot reach the cluster at http://127.0.0.1:9")
    assert not control_plane_status(bare_kube).installed


def test_istioctl_that_hangs_is_killed_at_the_timeout(bare_kube: Kube, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    binary = fake_istioctl(
        tmp_path,
        f"""
        import os, time
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
        print("- Processing resources for Istio core.", flush=True)
        time.sleep(60)
        """,
    )
    progress: list[str] = []
    started = time.monotonic()

    result = IstioctlInstaller(bare_kube, binary=binary, timeout=0.5).install(
        "demo", on_progress=progress.append
    )

    assert time.monotonic() - started < 5
    assert result.status is InstallStatus.TIMED_OUT
    assert result.detail == "istioctl install did not finish within 0.5s and was stopped"
    assert progress == ["- Processing resources for Istio core."]
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_istioctl_output_is_streamed_while_it_runs(bare_kube: Kube, tmp_path: Path) -> None:
    binary = fake_istioctl(
        tmp_path,
        """
        import sys, time
        print("first", flush=True)
        time.sleep(0.5)
        print("second", file=sys.stderr, flush=True)
        """,
    )
    seen: list[tuple[str, float]] = []
    started = time.monotonic()
    result = IstioctlInstaller(bare_kube, binary=binary).install(
        "demo", on_progress=lambda line: seen.append((line, time.monotonic() - started))
    )
    assert result.succeeded
    assert [line for line, _ in seen] == ["first", "second"]
    assert seen[0][1] < seen[1][1] - 0.3


def test_missing_istioctl_binary_is_a_clear_error(bare_kube: Kube) -> None:
    with pytest.raises(InstallerUnavailable, match="'no-such-istioctl' is not an executable on PATH"):
        IstioctlInstaller(bare_kube, binary="no-such-istioctl").install("demo")


def test_second_install_is_refused_unless_forced(
    playground: Playground, article_kube: Kube, record: Path
) -> None:
    playground.hooks.requests.clear()
    installer = IstioctlInstaller(article_kube)
    with pytest.raises(AlreadyInstalled, match="Deployment istio-system/istiod exists"):
        installer.install("demo")
    with pytest.raises(AlreadyInstalled):
        installer.install("demo", dry_run=True)
    # A revision is a second control plane beside the first (canary upgrades), not a reinstall.
    assert installer.install("minimal", "canary", dry_run=True).status is InstallStatus.PLANNED
    assert recorded(record) == []
    assert writes(playground) == []

    assert installer.install("demo", force=True).succeeded
    assert recorded(record) == [["install", "--set", "profile=demo", "-y"]]


def test_uninstall(article_kube: Kube, record: Path) -> None:
    installer = IstioctlInstaller(article_kube)
    result = installer.uninstall()
    assert result.succeeded
    assert recorded(record) == [["uninstall", "--purge", "-y"]]
    assert control_plane_status(article_kube).istiod is None
    with pytest.raises(NotInstalled, match="Deployment istio-system/istiod does not exist"):
        installer.uninstall()


# ----------------------------------------------------------------- Job


def create_installer_namespace(kube: Kube) -> None:
    kube.core.create_namespace({"metadata": {"name": "meshbot"}})  # type: ignore[arg-type]
    kube.core.create_namespaced_service_account(
        "meshbot",
        {"metadata": {"name": "meshbot-installer"}},  # type: ignore[arg-type]
    )


def test_job_installer_runs_istioctl_image(bare_kube: Kube) -> None:
    create_installer_namespace(bare_kube)
    progress: list[str] = []
    installer = JobInstaller(bare_kube, job_name=lambda action: f"istio-{action}-test")

    result = installer.install("demo", on_progress=progress.append)

    assert result.succeeded, result.detail
    assert result.exit_code == 0
    assert result.runner == "Job meshbot/istio-install-test (docker.io/istio/istioctl:1.24.2)"
    assert progress[0] == "Job meshbot/istio-install-test started (docker.io/istio/istioctl:1.24.2)"
    assert progress[1:] == result.output.splitlines()
    assert result.output.splitlines()[-1] == "✔ Installation complete"

    job = bare_kube.batch.read_namespaced_job("istio-install-test", "meshbot")
    assert job.spec is not None and job.metadata is not None
    pod = job.spec.template.spec
    assert pod is not None
    assert job.spec.backoff_limit == 0
    assert job.spec.ttl_seconds_after_finished == 3600
    assert pod.service_account_name == "meshbot-installer"
    assert pod.restart_policy == "Never"
    assert [(c.image, c.args) for c in pod.containers] == [
        ("docker.io/istio/istioctl:1.24.2", ["install", "--set", "profile=demo", "-y"])
    ]
    assert (job.metadata.labels or {})["app.kubernetes.io/managed-by"] == "meshbot"
    assert control_plane_status(bare_kube).ready


def test_failing_job_is_reported_with_its_log(bare: Playground, bare_kube: Kube) -> None:
    create_installer_namespace(bare_kube)
    log = "- Processing resources for Istio core.\nError: failed to install manifests: timed out\n"
    httpx.post(
        f"{bare.url}/_playground/jobs/fail",
        json={"namespace": "meshbot", "name": "istio-install-bad", "log": log},
    ).raise_for_status()

    result = JobInstaller(bare_kube, job_name=lambda action: "istio-install-bad").install("demo")

    assert result.status is InstallStatus.FAILED
    assert result.exit_code == 1
    assert result.output == log
    assert result.detail == (
        "Job meshbot/istio-install-bad failed (BackoffLimitExceeded: Job has reached the specified "
        "backoff limit): Error: failed to install manifests: timed out"
    )
    assert not control_plane_status(bare_kube).installed


def test_job_installer_dry_run_and_refusal(playground: Playground, article_kube: Kube) -> None:
    installer = JobInstaller(article_kube)
    playground.hooks.requests.clear()
    with pytest.raises(AlreadyInstalled):
        installer.install("demo")
    planned = installer.install("default", force=True, dry_run=True)
    assert planned.runner == (
        "would create a Job in namespace meshbot running docker.io/istio/istioctl:1.24.2 "
        "install --set profile=default -y as ServiceAccount meshbot-installer"
    )
    assert writes(playground) == []


def test_job_in_a_missing_namespace_is_a_clear_error(bare_kube: Kube) -> None:
    from mesh.errors import NotFound

    with pytest.raises(NotFound, match="creating Job meshbot/istio-install-"):
        JobInstaller(bare_kube).install("demo")


def test_wait_for_job_watches_until_it_finishes(bare_kube: Kube) -> None:
    create_installer_namespace(bare_kube)
    before = bare_kube.batch.list_namespaced_job("meshbot").metadata
    assert before is not None
    manifest = installer_job_manifest(
        "istio-install-w", "meshbot", "docker.io/istio/istioctl:1.24.2", "meshbot-installer", ("version",)
    )
    bare_kube.batch.create_namespaced_job("meshbot", manifest)  # type: ignore[arg-type]

    # From a resourceVersion before the Job existed, the watch replays its way to completion.
    job = wait_for_job(bare_kube, "meshbot", "istio-install-w", since=before.resource_version, timeout=5)
    assert job is not None and job.status is not None
    assert job.status.succeeded == 1


def test_wait_for_job_gives_up_at_the_timeout(bare_kube: Kube) -> None:
    create_installer_namespace(bare_kube)
    started = time.monotonic()
    assert wait_for_job(bare_kube, "meshbot", "never-created", timeout=0.5, poll_interval=0.2) is None
    assert time.monotonic() - started < 4
