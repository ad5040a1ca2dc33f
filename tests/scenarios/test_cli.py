"""The terminal fronts: `meshbot run` exit codes from the installed console script, `meshbot chat`
driven through stdin, `meshbot demo` as a newcomer starts it, and start-up errors as one line."""

from __future__ import annotations

import getpass
import json
import os
import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.scenarios.conftest import EXPERIMENT_ID, MESHBOT_SCRIPT, NS, Meshbot


def test_the_console_script_exits_0_1_and_2(meshbot: Meshbot) -> None:
    # Three real processes at once: each spends most of its second importing.
    with ThreadPoolExecutor(3) as pool:
        ok, refused, malformed = pool.map(
            lambda args: meshbot.process("run", *args),
            [
                [f"fault abort 500 50% web-svc.{NS}"],
                ["fault abort 500 kube-dns.kube-system", "--channel", "C-ops"],
                [f"fault abort 600 web-svc.{NS}"],
            ],
        )

    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("Experiment exp-") and ok.stderr == ""
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr == "namespace kube-system is protected by policy: faults are not allowed there\n"
    assert malformed.returncode == 2
    assert malformed.stdout == ""
    assert malformed.stderr.startswith("HTTP status must be between 200 and 599, got 600\nUsage: fault abort")

    # Without --user the OS login is the actor; the channel is recorded as given.
    events = meshbot.audit_events()
    login = getpass.getuser()
    assert {(e.actor_user_id, e.actor_name, e.source) for e in events} == {(f"cli:{login}", login, "cli")}
    experiment_id = EXPERIMENT_ID.search(ok.stdout)
    assert experiment_id
    # In whatever order the three processes got there.
    assert sorted((e.command, e.outcome, e.channel, e.experiment_id) for e in events) == [
        ("fault abort 500 50% web-svc.emojivoto-istio", "ok", None, experiment_id.group()),
        ("fault abort 500 kube-dns.kube-system", "refused", "C-ops", None),
        ("fault abort 600 web-svc.emojivoto-istio", "refused", None, None),
    ]


def test_run_without_a_command_is_a_usage_error(meshbot: Meshbot) -> None:
    result = meshbot.cli("run")
    assert result.exit_code == 2
    assert "Missing argument 'command'." in result.stderr
    assert meshbot.audit_events() == []


def test_audit_json_lists_what_was_done_with_filters(meshbot: Meshbot) -> None:
    experiment_id = meshbot.inject_fault(f"fault delay 3s web-svc.{NS}", user="bob")
    meshbot.run(f"fault abort 700 web-svc.{NS}", user="carol")
    meshbot.ok("status", user="bob")

    result = meshbot.cli("audit", "verb=fault", "--format", "json")

    assert result.exit_code == 0, result.output
    events = json.loads(result.stdout)
    assert [(e["actor_name"], e["outcome"], e["experiment_id"]) for e in events] == [
        ("carol", "refused", None),
        ("bob", "ok", experiment_id),
    ]
    by_experiment = json.loads(meshbot.cli("audit", f"experiment={experiment_id}", "--format", "json").stdout)
    assert [e["command"] for e in by_experiment] == [f"fault delay 3s web-svc.{NS}"]
    assert "audit chain intact" in meshbot.cli("audit", "verify").stdout


def test_chat_answers_each_line_until_exit(meshbot: Meshbot) -> None:
    lines = [
        f"use {NS}",
        "fault abort 500 50% web-svc",
        "chaos",  # a mistake does not end the session
        "",
        "fault list",
        "exit",
        "status",  # after exit: never run
    ]

    result = meshbot.cli("chat", "--user", "bob", "--channel", "C-chaos", input="\n".join(lines) + "\n")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("meshbot chat — type `help` for commands, `exit` to leave.\nmesh> ")
    assert "This channel now uses namespace emojivoto-istio on cluster default by default." in result.stdout
    assert "abort 500 on 50% of requests to web-svc.emojivoto-istio." in result.stdout
    assert "unknown command 'chaos'" in result.stderr
    assert "Active faults (1):" in result.stdout and "by bob" in result.stdout
    assert "*Control plane*" not in result.stdout
    events = meshbot.audit_events()
    assert [(e.verb, e.outcome) for e in events] == [
        ("use", "ok"),
        ("fault", "ok"),
        ("chaos", "refused"),
        ("fault", "ok"),
    ]
    assert {(e.actor_user_id, e.channel, e.source) for e in events} == {("cli:bob", "C-chaos", "cli")}


def test_chat_ends_at_end_of_input(meshbot: Meshbot) -> None:
    result = meshbot.process("chat", "--user", "bob", input=f"status {NS}\n")
    assert result.returncode == 0, result.stderr
    assert "• emojivoto-istio (not labelled): 0/4 pods with a sidecar" in result.stdout
    assert result.stdout.endswith("mesh> \n")
    assert [e.verb for e in meshbot.audit_events()] == ["status"]


def test_demo_starts_the_write_up_cluster_and_chats(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHBOT_") and k != "KUBECONFIG"}
    demo = subprocess.Popen(
        [str(MESHBOT_SCRIPT), "demo"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=env,
        text=True,
    )
    assert demo.stdin is not None and demo.stdout is not None
    seen: list[str] = []
    out = demo.stdout
    reader = threading.Thread(target=lambda: seen.extend(iter(out.readline, "")), daemon=True)
    reader.start()
    try:
        demo.stdin.write(
            "status\ninject emojivoto-istio --restart\n"
            "expose web-svc host=emoji-istio.test.net gateway=emojivoto\nfault abort 500 50% web-svc\n"
        )
        demo.stdin.flush()
        # The demo's Prometheus scrapes every second; rate() needs two scrapes after the sidecars.
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline and "← vote-bot" not in "".join(seen):
            demo.stdin.write("summary web-svc window=1m\n")
            demo.stdin.flush()
            time.sleep(1)
        demo.stdin.write("install --force\nexit\n")
        demo.stdin.close()
        demo.wait(60)
    finally:
        if demo.poll() is None:
            demo.kill()
    reader.join(5)
    stdout = "".join(seen)

    assert demo.returncode == 0, demo.stderr.read() if demo.stderr else ""
    assert "Playground cluster (the write-up's, Istio installed) at http://127.0.0.1:" in stdout
    assert "scrapes the playground's simulated traffic every second" in stdout
    assert "*Control plane*\n✔ istiod 1/1 1.24.2\n" in stdout
    assert "✔ kiali 1/1 v1.18" in stdout
    # The demo's policy makes emojivoto-istio the default namespace.
    assert "abort 500 on 50% of requests to web-svc.emojivoto-istio." in stdout
    # Live numbers, and the fault in them: meshbot's route went into the exposed (gateway-bound)
    # VirtualService, which governs the gateway's requests and not the sidecars' (Istio's rule).
    rows = [line for line in stdout.splitlines() if "← vote-bot" in line or "← istio-ingressgateway" in line]
    assert rows, stdout[-2000:]
    assert any("500 FI" in row for row in rows if "istio-ingressgateway" in row), rows
    # The Job installer's namespace and account are there, as deploy/components/installer makes them.
    assert "Istio installed with profile demo (`istioctl install --set profile=demo -y`)." in stdout
    assert sorted(
        p.name for p in (tmp_path / ".demo").iterdir() if not p.name.endswith(("-wal", "-shm"))
    ) == [
        "kubeconfig",
        "meshbot.db",
    ]


def test_a_missing_database_says_to_migrate(meshbot: Meshbot) -> None:
    fresh = meshbot.tmp / "fresh.db"
    meshbot.env["MESHBOT_DATABASE_URL"] = f"sqlite:///{fresh}"

    result = meshbot.run("status")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: no database at sqlite:///{fresh}: the file does not exist; "
        "run `meshbot migrate` to create it"
    )
    assert not fresh.exists()

    migrated = meshbot.cli("migrate")
    assert migrated.exit_code == 0, migrated.output
    meshbot.ok("status")

    meshbot.env["MESHBOT_DATABASE_URL"] = f"sqlite:///{meshbot.tmp / 'auto.db'}"
    meshbot.env["MESHBOT_AUTO_MIGRATE"] = "1"
    meshbot.ok("status")
    assert [e.verb for e in meshbot.audit_events()] == ["status"]


def test_bad_settings_are_one_line_errors(meshbot: Meshbot) -> None:
    policy = meshbot.tmp / "policy.yaml"
    policy.write_text("faults:\n  max_duration: forever\n")
    meshbot.env["MESHBOT_POLICY_FILE"] = str(policy)
    result = meshbot.run("status")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: policy file {policy} is invalid: faults.max_duration: ")
    assert len(result.stderr.splitlines()) == 1

    del meshbot.env["MESHBOT_POLICY_FILE"]
    meshbot.env["KUBECONFIG"] = str(meshbot.tmp / "no-such-kubeconfig")
    result = meshbot.run("status")
    assert result.exit_code == 1
    # The cluster is connected when a command first needs it: the command failed, and says why.
    assert result.stderr.startswith(f"status failed: KUBECONFIG={meshbot.tmp / 'no-such-kubeconfig'}: ")
    assert [(e.verb, e.outcome) for e in meshbot.audit_events()] == [("status", "error")]


def test_an_unreachable_cluster_is_an_error_not_a_traceback(meshbot: Meshbot) -> None:
    meshbot.pg.stop()
    result = meshbot.run(f"fault abort 500 web-svc.{NS}")
    assert result.exit_code == 1
    assert f"the Kubernetes API server at {meshbot.pg.url} is unreachable" in result.stderr
    assert "Traceback" not in result.output
    assert meshbot.last_event().outcome == "error"


def test_a_fault_in_the_demo_ends_by_itself(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHBOT_") and k != "KUBECONFIG"}
    demo = subprocess.Popen(
        [str(MESHBOT_SCRIPT), "demo"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=env,
        text=True,
    )
    assert demo.stdin is not None and demo.stdout is not None
    demo.stdin.write("fault delay 1s web-svc for 1s\n")
    demo.stdin.flush()
    seen = ""
    deadline = time.monotonic() + 30
    while "expired" not in seen and time.monotonic() < deadline:
        seen += demo.stdout.readline()
    demo.stdin.write("fault list\nexit\n")
    demo.stdin.flush()
    out, err = demo.communicate(timeout=30)
    assert demo.returncode == 0, err
    experiment_id = re.search(r"Experiment (exp-[0-9a-z]+):", seen)
    assert experiment_id, seen
    assert f"[{experiment_id.group(1)}] ⏹ Experiment {experiment_id.group(1)} expired" in seen
    assert "No active faults." in out
