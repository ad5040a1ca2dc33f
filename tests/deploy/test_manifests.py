"""The Kubernetes manifests in deploy/ apply cleanly and give meshbot what its verbs need."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml

from core.policy import Policy
from playground.runner import Playground
from tests.conftest import kube_client_for

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = str(Path(sys.executable).parent / "kubectl")


def kubectl(pg: Playground, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["KUBECONFIG"] = str(pg.kubeconfig(tmp_path / "kc"))
    return subprocess.run([KUBECTL, *args], env=env, capture_output=True, text=True, timeout=60)


def test_base_applies_and_runs_two_replicas_without_sidecars(playground: Playground, tmp_path: Path) -> None:
    applied = kubectl(playground, tmp_path, "apply", "-k", str(ROOT / "deploy" / "base"))
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


def render(path: str) -> list[dict[str, Any]]:
    """`kubectl kustomize <path>`: the objects a platform reviewer reads before applying."""
    rendered = subprocess.run(
        [KUBECTL, "kustomize", str(ROOT / path)], capture_output=True, text=True, timeout=60, check=True
    )
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def pod_specs(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    specs = [o["spec"]["template"]["spec"] for o in of_kind(objects, "Deployment")]
    specs += [o["spec"]["jobTemplate"]["spec"]["template"]["spec"] for o in of_kind(objects, "CronJob")]
    return specs


VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


@pytest.mark.parametrize("path", ["deploy/base", "deploy/overlays/prod", "deploy/overlays/dev"])
def test_default_install_is_least_privilege(path: str) -> None:
    objects = render(path)
    bindings = of_kind(objects, "ClusterRoleBinding") + of_kind(objects, "RoleBinding")
    assert [b["metadata"]["name"] for b in bindings if b["roleRef"]["name"] == "cluster-admin"] == []
    rules = [r for o in objects if o["kind"] in ("Role", "ClusterRole") for r in o["rules"]]
    wildcards = [r for r in rules if "*" in r["verbs"] + r.get("resources", []) + r.get("apiGroups", [])]
    assert wildcards == []
    granted = {
        (g, res, v) for r in rules for g in r["apiGroups"] for res in r["resources"] for v in r["verbs"]
    }
    assert {
        (g, res, v) for g, res, v in granted if res in ("jobs", "pods", "secrets") and v != "list"
    } == set()
    assert ("", "secrets", "list") not in granted


@pytest.mark.parametrize("path", ["deploy/overlays/prod", "deploy/overlays/dev"])
def test_every_container_is_hardened_and_pinned(path: str) -> None:
    for spec in pod_specs(render(path)):
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in spec.get("initContainers", []) + spec["containers"]:
            assert container["image"] == f"registry.example.com/meshbot:{VERSION}", container["name"]
            hardened = container["securityContext"]
            assert hardened["allowPrivilegeEscalation"] is False, container["name"]
            assert hardened["readOnlyRootFilesystem"] is True, container["name"]
            assert hardened["capabilities"] == {"drop": ["ALL"]}, container["name"]
            assert container["resources"]["requests"]["memory"], container["name"]
            assert container["resources"]["limits"]["memory"], container["name"]


def test_prod_runs_two_spread_replicas_with_probes_pdb_and_network_policy() -> None:
    objects = render("deploy/overlays/prod")
    (deployment,) = of_kind(objects, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    assert pod["affinity"]["podAntiAffinity"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert [c["args"] for c in pod["initContainers"]] == [["migrate"]]
    database = {e["name"]: e for e in container["env"]}["MESHBOT_DATABASE_URL"]
    assert database["valueFrom"]["secretKeyRef"]["name"] == "meshbot-database"
    (pdb,) = of_kind(objects, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    (policy,) = of_kind(objects, "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert [p["port"] for r in policy["spec"]["ingress"] for p in r["ports"]] == ["http"]
    # The policy ConfigMap shows roles to fill in, and is a valid policy as shipped.
    (config,) = [c for c in of_kind(objects, "ConfigMap") if c["metadata"]["name"] == "meshbot-policy"]
    shipped = yaml.safe_load(config["data"]["policy.yaml"])
    assert set(shipped) == set(Policy.model_fields)
    assert set(Policy.model_validate(shipped).roles) == {"admin", "operator", "viewer"}


def test_dev_runs_one_replica_on_sqlite_without_pdb() -> None:
    objects = render("deploy/overlays/dev")
    (deployment,) = of_kind(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert of_kind(objects, "PodDisruptionBudget") == []
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MESHBOT_DATABASE_URL"] == "sqlite:////var/lib/meshbot/meshbot.db"
    assert [p["metadata"]["name"] for p in of_kind(objects, "PersistentVolumeClaim")] == ["meshbot-data"]


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_overlays_apply(overlay: str, playground: Playground, tmp_path: Path) -> None:
    applied = kubectl(playground, tmp_path, "apply", "-k", str(ROOT / "deploy" / "overlays" / overlay))
    assert applied.returncode == 0, applied.stderr
    with kube_client_for(playground) as api_client:
        deployment = kubernetes.client.AppsV1Api(api_client).read_namespaced_deployment("meshbot", "meshbot")
        assert deployment.status.ready_replicas == (1 if overlay == "dev" else 2)


def test_optional_components_render_only_when_chosen(tmp_path: Path) -> None:
    assert of_kind(render("deploy/overlays/prod"), "ServiceMonitor") == []
    components = ["installer", "servicemonitor", "ingress"]
    overlay = tmp_path / "mine"
    overlay.mkdir()
    # Kustomize takes only relative paths to other kustomizations.
    relative = [os.path.relpath(ROOT / "deploy/components" / c, overlay) for c in components]
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{os.path.relpath(ROOT / 'deploy/overlays/prod', overlay)}]\ncomponents: {relative}\n"
    )
    objects = render(str(overlay))
    assert {o["kind"] for o in objects} >= {"ServiceMonitor", "Ingress"}
    (admin,) = [b for b in of_kind(objects, "ClusterRoleBinding") if b["roleRef"]["name"] == "cluster-admin"]
    assert admin["subjects"] == [
        {"kind": "ServiceAccount", "name": "meshbot-installer", "namespace": "meshbot-installer"}
    ]
    env = {
        e["name"]: e.get("value")
        for e in of_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert (env["MESHBOT_INSTALLER"], env["MESHBOT_INSTALLER_NAMESPACE"]) == ("job", "meshbot-installer")
