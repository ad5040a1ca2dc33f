"""`meshbot playground` as a user runs it: a process that serves until interrupted.

Each test starts the real command as a subprocess, waits for the kubeconfig it writes, talks to
the server through that kubeconfig (kubectl and the official client), then interrupts it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

BIN = Path(sys.executable).parent
MESHBOT = BIN / "meshbot"
KUBECTL = BIN / "kubectl"


def clean_env(home: Path) -> dict[str, str]:
    # No proxies, no MESHBOT_* settings of the developer's, a HOME of its own for kubectl's cache.
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "LANG": "C.UTF-8"}


def start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(MESHBOT), "playground", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(tmp_path),
        cwd=tmp_path,
    )


def wait_for_kubeconfig(path: Path, process: subprocess.Popen[str], timeout: float = 30.0) -> dict[str, Any]:
    """The kubeconfig once it is complete; it is written after the server accepts connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"meshbot playground exited early: {process.communicate()}")
        if path.exists():
            loaded = yaml.safe_load(path.read_text() or "null")
            if isinstance(loaded, dict) and loaded.get("current-context"):
                return loaded
        time.sleep(0.02)
    raise AssertionError("no kubeconfig written in time")


def stop(process: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str, str]:
    process.send_signal(sig)
    out, err = process.communicate(timeout=15)
    return process.returncode, out, err


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Kills whatever a failing test left running."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)


def test_serves_the_article_cluster_until_interrupted(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    kubeconfig = tmp_path / "out" / "kubeconfig"
    process = start(tmp_path, "--seed", "article", "--port", "0", "--kubeconfig", str(kubeconfig))
    processes.append(process)

    loaded = wait_for_kubeconfig(kubeconfig, process)
    server = loaded["clusters"][0]["cluster"]["server"]
    assert server.startswith("http://127.0.0.1:")
    pods = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), "get", "pods", "-A", "--no-headers"],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        timeout=30,
        check=True,
    ).stdout.splitlines()
    assert len(pods) == 11
    # The official client's own kubeconfig loader reads the same file.
    with config.new_client_from_config(str(kubeconfig)) as api_client:
        api_client.configuration.proxy = None
        names = {n.metadata.name for n in client.CoreV1Api(api_client).list_namespace().items if n.metadata}
    assert {"istio-system", "emojivoto-istio"} <= names

    code, out, err = stop(process, signal.SIGINT)

    assert code == 0, err
    assert f"playground (article) serving the Kubernetes API at {server}" in out
    assert f"kubeconfig written to {kubeconfig}" in out
    port = int(server.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_sigterm_stops_it_too(tmp_path: Path, processes: list[subprocess.Popen[str]]) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    process = start(tmp_path, "--seed", "empty", "--kubeconfig", str(kubeconfig))
    processes.append(process)
    wait_for_kubeconfig(kubeconfig, process)

    code, out, err = stop(process, signal.SIGTERM)

    assert code == 0, err
    assert "playground (empty) serving" in out


def test_an_unknown_seed_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(MESHBOT), "playground", "--seed", "nonsense", "--kubeconfig", str(tmp_path / "kc")],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        timeout=30,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown seed 'nonsense'; choose one of: ")
    assert not (tmp_path / "kc").exists()


def test_a_port_in_use_is_reported(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = subprocess.run(
            [
                str(MESHBOT),
                "playground",
                "--seed",
                "empty",
                "--port",
                str(port),
                "--kubeconfig",
                str(tmp_path / "kc"),
            ],
            capture_output=True,
            text=True,
            env=clean_env(tmp_path),
            timeout=30,
            check=False,
        )

    assert result.returncode == 1
    assert result.stderr.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
