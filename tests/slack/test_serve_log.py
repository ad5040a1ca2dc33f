"""`meshbot serve`'s log as an operator reads it: what happened, not every tick of the scheduler."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from playground.runner import Playground

from .conftest import BOT_TOKEN, SIGNING_SECRET
from .fake_slack import FakeSlack


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(port: str) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_serve_logs_no_scheduler_ticks_and_no_misleading_bolt_warning(
    playground: Playground, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "KUBECONFIG": str(playground.kubeconfig(tmp_path / "kubeconfig")),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "MESHBOT_SLACK_API_URL": fake_slack.api_url,
        "MESHBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'meshbot.db'}",
        "MESHBOT_AUTO_MIGRATE": "true",
        "MESHBOT_LEADER_ELECTION": "false",
        "MESHBOT_PORT": str(free_port()),
        "MESHBOT_API_TOKEN": "a" * 32,
    }
    serve = subprocess.Popen(
        [str(Path(sys.executable).with_name("meshbot")), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 30
    while not _healthy(env["MESHBOT_PORT"]):
        assert serve.poll() is None and time.monotonic() < deadline, "meshbot serve did not start"
        time.sleep(0.2)
    time.sleep(3)  # a few runs of the 1 s sync job
    serve.send_signal(signal.SIGINT)
    log, _ = serve.communicate(timeout=20)

    assert "Application startup complete." in log, log
    assert "apscheduler" not in log, log
    assert "will be unused" not in log, log
    assert "Traceback" not in log, log
