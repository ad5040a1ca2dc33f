"""deploy/base carries the reaper CronJob, which runs `meshbot reap` every minute as
the bot's ServiceAccount, which may do what a reap does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import kubernetes.client

from playground.runner import Playground
from tests.conftest import kube_client_for

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = str(Path(sys.executable).parent / "kubectl")


def _apply(pg: Playground, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["KUBECONFIG"] = str(pg.kubeconfig(tmp_path / "kc"))
    return subprocess.run(
        [KUBECTL, "apply", *args, "--validate=false"], env=env, capture_output=True, text=True, timeout=60
    )


def test_the_reaper_cronjob_runs_meshbot_reap_every_minute_as_the_bot(
    playground: Playground, tmp_path: Path
) -> None:
    applied = _apply(playground, tmp_path, "-k", str(ROOT / "deploy" / "base"))
    assert applied.returncode == 0, applied.stderr
    assert "cronjob.batch/meshbot-reaper created" in applied.stdout

    with kube_client_for(playground) as api_client:
        batch = kubernetes.client.BatchV1Api(api_client)
        cronjob = api_client.sanitize_for_serialization(
            batch.read_namespaced_cron_job("meshbot-reaper", "meshbot")
        )
        rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)
        bindings = api_client.sanitize_for_serialization(rbac.list_cluster_role_binding())["items"]
        (role,) = [
            b["roleRef"]["name"]
            for b in bindings
            if {"kind": "ServiceAccount", "name": "meshbot", "namespace": "meshbot"} in b.get("subjects", [])
        ]
        rules = api_client.sanitize_for_serialization(rbac.read_cluster_role(role))["rules"]
    assert cronjob["spec"]["schedule"] == "* * * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "meshbot"
    (container,) = pod["containers"]
    assert container["args"][0] == "reap"
    granted = {
        (g, r, v)
        for rule in rules
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    for verb in ("list", "get", "patch", "delete"):
        assert ("networking.istio.io", "virtualservices", verb) in granted
