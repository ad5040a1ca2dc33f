"""The Kubernetes manifests in deploy/ apply cleanly and give meshbot what its verbs need."""

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


def kubectl(pg: Playground, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["KUBECONFIG"] = str(pg.kubeconfig(tmp_path / "kc"))
    return subprocess.run([KUBECTL, *args], env=env, capture_output=True, text=True, timeout=60)


def test_base_applies_and_runs_two_replicas_without_sidecars(playground: Playground, tmp_path: Path) -> None:
    applied = kubectl(playground, tmp_path, "apply", "-k", str(ROOT / "deploy" / "base"), "--validate=false")
    assert applied.returncode == 0, applied.stderr
    assert "deployment.apps/meshbot created" in applied.stdout
    with kube_client_for(playground) as api_client:
        apps = kubernetes.client.AppsV1Api(api_client)
        core = kubernetes.client.CoreV1Api(api_client)
        deployment = apps.read_namespaced_deployment("meshbot", "meshbot")
        assert deployment.status.ready_replicas == 2
        pods = core.list_namespaced_pod("meshbot", label_selector="app=meshbot").items
        assert [c.name for p in pods for c in p.spec.containers] == ["meshbot", "meshbot"]
        assert core.read_namespace("meshbot").metadata.labels["istio-injection"] == "disabled"


def test_meshbot_role_covers_every_write_its_verbs_make(playground: Playground, tmp_path: Path) -> None:
    assert (
        kubectl(
            playground, tmp_path, "apply", "-k", str(ROOT / "deploy" / "base"), "--validate=false"
        ).returncode
        == 0
    )
    with kube_client_for(playground) as api_client:
        rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)
        rules = rbac.read_cluster_role("meshbot").rules
        granted = {
            (g, r, v) for rule in rules for g in rule.api_groups for r in rule.resources for v in rule.verbs
        }
        namespaced = rbac.read_namespaced_role("meshbot", "meshbot").rules
        granted |= {
            (g, r, v)
            for rule in namespaced
            for g in rule.api_groups
            for r in rule.resources
            for v in rule.verbs
        }
    needed = {
        ("", "namespaces", "patch"),  # inject / uninject
        ("apps", "deployments", "patch"),  # inject --restart
        ("networking.istio.io", "virtualservices", "patch"),  # fault, clear, extend
        ("networking.istio.io", "virtualservices", "create"),  # a fault on a service no VirtualService routes
        ("networking.istio.io", "virtualservices", "delete"),  # clearing meshbot's own VirtualService
        ("networking.istio.io", "gateways", "create"),  # expose
        ("security.istio.io", "peerauthentications", "create"),  # mtls strict
        ("batch", "jobs", "create"),  # the Job installer
        ("", "pods/log", "get"),  # its output
        ("coordination.k8s.io", "leases", "update"),  # leader election
    }
    assert needed <= granted, needed - granted
