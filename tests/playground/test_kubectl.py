"""kubectl, unchanged, against the playground: each verb meshbot's users type, and what it prints.

kubectl runs as a subprocess with a kubeconfig from `Playground.kubeconfig` and an environment
without proxies; its output is compared with what it prints against a real cluster (the seed
write-up's `kubectl get all -n istio-system`, kubectl's own success and error lines).
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from playground.hooks import Grant
from playground.runner import Playground
from tests.support import write_up

KUBECTL = Path(sys.executable).parent / "kubectl"
APP_NS = "emojivoto-istio"
# The seed write-up's Gateway and VirtualService (the Gateway's selector without its stray comment).
EXPOSE = write_up.EXPOSE_YAML
CONFIG_MAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: default
data:
  mode: {mode}
"""


@dataclass(frozen=True)
class Kubectl:
    kubeconfig: Path
    home: Path

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        # A clean environment: no proxy settings, and a HOME of its own for kubectl's discovery cache.
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "KUBECONFIG": str(self.kubeconfig),
        }
        return subprocess.run(
            [str(KUBECTL), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=False,
        )

    def ok(self, *args: str, stdin: str | None = None) -> str:
        result = self.run(*args, stdin=stdin)
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result.stdout

    def fails(self, *args: str, stdin: str | None = None) -> str:
        result = self.run(*args, stdin=stdin)
        assert result.returncode != 0, f"kubectl {' '.join(args)} succeeded: {result.stdout}"
        return result.stderr.strip()

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "-o", "json"))


def kubectl_for(pg: Playground, tmp_path: Path, token: str | None = None, name: str = "kc") -> Kubectl:
    home = tmp_path / f"home-{name}"
    home.mkdir()
    return Kubectl(pg.kubeconfig(tmp_path / name, token=token), home)


@pytest.fixture
def kubectl(playground: Playground, tmp_path: Path) -> Kubectl:
    return kubectl_for(playground, tmp_path)


def table(output: str) -> list[list[str]]:
    """kubectl's table as rows of cells (columns are separated by at least two spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in output.strip().splitlines() if line.strip()]


# ---------------------------------------------------------------- discovery


def test_version_and_discovery(kubectl: Kubectl) -> None:
    version = json.loads(kubectl.ok("version", "-o", "json"))
    assert version["serverVersion"]["gitVersion"].startswith("v1.")
    assert version["serverVersion"]["minor"] == version["clientVersion"]["minor"]

    resources = kubectl.ok("api-resources", "-o", "name").split()
    for name in (
        "pods",
        "namespaces",
        "configmaps",
        "deployments.apps",
        "jobs.batch",
        "leases.coordination.k8s.io",
        "roles.rbac.authorization.k8s.io",
        "customresourcedefinitions.apiextensions.k8s.io",
        "virtualservices.networking.istio.io",
        "peerauthentications.security.istio.io",
    ):
        assert name in resources
    versions = kubectl.ok("api-versions").split()
    assert {"v1", "apps/v1", "networking.istio.io/v1", "networking.istio.io/v1alpha3"} <= set(versions)


# ---------------------------------------------------------------- get


def test_get_all_in_istio_system_prints_like_the_write_up(kubectl: Kubectl) -> None:
    output = kubectl.ok("get", "all", "-n", "istio-system")
    sections = output.strip().split("\n\n")
    assert [table(s)[0][0] for s in sections] == ["NAME"] * 4

    pods = {re.sub(r"-[a-z0-9]+-[a-z0-9]+$", "", row[0]): row[1:3] for row in table(sections[0])[1:]}
    assert pods == {
        "pod/grafana": ["1/1", "Running"],
        "pod/istio-egressgateway": ["1/1", "Running"],
        "pod/istio-ingressgateway": ["1/1", "Running"],
        "pod/istio-tracing": ["1/1", "Running"],
        "pod/istiod": ["1/1", "Running"],
        "pod/kiali": ["1/1", "Running"],
        "pod/prometheus": ["2/2", "Running"],
    }
    assert table(sections[1])[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    services = {row[0]: (row[1], row[3], row[4]) for row in table(sections[1])[1:]}
    assert services == {
        "service/grafana": ("ClusterIP", "<none>", "3000/TCP"),
        "service/istio-egressgateway": ("ClusterIP", "<none>", "80/TCP,443/TCP,15443/TCP"),
        "service/istio-ingressgateway": (
            "LoadBalancer",
            "172.2.0.201",
            "15020:32553/TCP,80:30080/TCP,443:30820/TCP,31400:32112/TCP,15443:30203/TCP",
        ),
        "service/istiod": ("ClusterIP", "<none>", "15010/TCP,15012/TCP,443/TCP,15014/TCP,53/UDP,853/TCP"),
        "service/jaeger-agent": ("ClusterIP", "<none>", "5775/UDP,6831/UDP,6832/UDP"),
        "service/jaeger-collector": ("ClusterIP", "<none>", "14267/TCP,14268/TCP,14250/TCP"),
        "service/jaeger-collector-headless": ("ClusterIP", "<none>", "14250/TCP"),
        "service/jaeger-query": ("ClusterIP", "<none>", "16686/TCP"),
        "service/kiali": ("ClusterIP", "<none>", "20001/TCP"),
        "service/prometheus": ("ClusterIP", "<none>", "9090/TCP"),
        "service/tracing": ("ClusterIP", "<none>", "80/TCP"),
        "service/zipkin": ("ClusterIP", "<none>", "9411/TCP"),
    }
    cluster_ips = {row[0]: row[2] for row in table(sections[1])[1:]}
    assert cluster_ips["service/jaeger-agent"] == "None"
    assert all(
        ip.startswith("10.")
        for name, ip in cluster_ips.items()
        if "headless" not in name and "agent" not in name
    )
    deployments = {row[0]: row[1] for row in table(sections[2])[1:]}
    assert len(deployments) == 7 and set(deployments.values()) == {"1/1"}
    assert table(sections[3])[0][:4] == ["NAME", "DESIRED", "CURRENT", "READY"]


def test_get_all_in_the_app_namespace(kubectl: Kubectl) -> None:
    output = kubectl.ok("get", "all", "-n", APP_NS)
    pods, services, deployments, _ = (table(s) for s in output.strip().split("\n\n"))

    assert sorted(re.sub(r"-[a-z0-9]+-[a-z0-9]+$", "", r[0]) for r in pods[1:]) == [
        "pod/emoji",
        "pod/vote-bot",
        "pod/voting",
        "pod/web",
    ]
    # Not yet labelled for injection: one container each.
    assert {r[1] for r in pods[1:]} == {"1/1"}
    assert {r[0]: (r[1], r[4]) for r in services[1:]} == {
        "service/emoji-svc": ("ClusterIP", "8080/TCP,8801/TCP"),
        "service/voting-svc": ("ClusterIP", "8080/TCP,8801/TCP"),
        "service/web-svc": ("ClusterIP", "80/TCP"),
    }
    assert [r[0] for r in deployments[1:]] == [
        "deployment.apps/emoji",
        "deployment.apps/vote-bot",
        "deployment.apps/voting",
        "deployment.apps/web",
    ]


def test_get_across_namespaces_with_selectors_and_output_formats(kubectl: Kubectl) -> None:
    every = table(kubectl.ok("get", "pods", "-A"))
    assert every[0] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert len(every) == 12
    assert {r[0] for r in every[1:]} == {APP_NS, "istio-system"}

    by_label = kubectl.ok("get", "pods", "-A", "-l", "app in (web-svc,emoji-svc)", "-o", "name")
    assert sorted(n.rsplit("-", 2)[0] for n in by_label.split()) == ["pod/emoji", "pod/web"]
    others = kubectl.ok("get", "deploy", "-n", APP_NS, "-l", "app.kubernetes.io/name!=web", "-o", "name")
    assert others.split() == ["deployment.apps/emoji", "deployment.apps/vote-bot", "deployment.apps/voting"]
    # `!=` also matches objects without the label at all: the Deployments carry no `app` label.
    assert len(kubectl.ok("get", "deploy", "-n", APP_NS, "-l", "app!=web-svc", "-o", "name").split()) == 4
    running = kubectl.ok("get", "pods", "-A", "--field-selector", "status.phase=Running", "-o", "name")
    assert len(running.split()) == 11
    assert kubectl.run("get", "pods", "-A", "-l", "app=nothing").stderr.strip() == "No resources found"

    as_yaml = yaml.safe_load(kubectl.ok("get", "svc", "web-svc", "-n", APP_NS, "-o", "yaml"))
    assert as_yaml["kind"] == "Service"
    assert as_yaml["spec"]["ports"] == [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]
    as_json = kubectl.json("get", "deploy", "-n", APP_NS)
    assert as_json["kind"] == "List"
    assert {i["kind"] for i in as_json["items"]} == {"Deployment"}
    ip = kubectl.ok(
        "get",
        "svc",
        "istio-ingressgateway",
        "-n",
        "istio-system",
        "-o",
        "jsonpath={.status.loadBalancer.ingress[0].ip}",
    )
    assert ip == "172.2.0.201"
    wide = table(kubectl.ok("get", "deploy", "web", "-n", APP_NS, "-o", "wide"))
    assert wide[0][-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1][-2:] == ["docker.l5d.io/buoyantio/emojivoto-web:v11", "app=web-svc,version=v11"]


def test_tables_of_other_kinds(kubectl: Kubectl) -> None:
    crds = table(kubectl.ok("get", "crd"))
    assert crds[0] == ["NAME", "CREATED AT"]
    assert "virtualservices.networking.istio.io" in [r[0] for r in crds[1:]]
    accounts = table(kubectl.ok("get", "sa", "-n", APP_NS))
    assert accounts[0] == ["NAME", "SECRETS", "AGE"]
    listed = kubectl.run("get", "endpoints", "web-svc", "-n", APP_NS)
    # As from any 1.33+ server.
    assert (
        listed.stderr
        == "Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice\n"
    )
    endpoints = table(listed.stdout)
    assert endpoints[0] == ["NAME", "ENDPOINTS", "AGE"]
    assert re.fullmatch(r"10\.244\.\d+\.\d+:8080", endpoints[1][1])
    namespaces = table(kubectl.ok("get", "ns"))
    assert namespaces[0] == ["NAME", "STATUS", "AGE"]
    assert {r[0]: r[1] for r in namespaces[1:]}[APP_NS] == "Active"


def test_get_watch_prints_each_change_as_a_table_row(kubectl: Kubectl) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(kubectl.home),
        "KUBECONFIG": str(kubectl.kubeconfig),
    }
    args = ["get", "pods", "-n", APP_NS, "-l", "app=web-svc", "-w", "--output-watch-events"]
    watcher = subprocess.Popen([str(KUBECTL), *args], stdout=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in watcher.stdout or []:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()

    def next_row() -> list[str]:
        return table(lines.get(timeout=10))[0]

    try:
        assert next_row()[:3] == ["EVENT", "NAME", "READY"]
        added = next_row()
        assert added[0] == "ADDED" and added[2:4] == ["1/1", "Running"]
        kubectl.ok("delete", "pod", added[1], "-n", APP_NS, "--wait=false")
        rows = [next_row() for _ in range(3)]
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)

    # One header only: every event came as a row of the same table.
    assert [r[0] for r in rows] == ["DELETED", "ADDED", "MODIFIED"]
    assert rows[0][1] == added[1]
    assert rows[1][1] == rows[2][1] != added[1]
    assert rows[1][2:4] == ["0/1", "Pending"] and rows[2][2:4] == ["1/1", "Running"]


# ---------------------------------------------------------------- write verbs


def test_label_then_rollout_restart_injects_sidecars(kubectl: Kubectl) -> None:
    assert kubectl.ok("label", "namespace", APP_NS, "istio-injection=enabled") == (
        f"namespace/{APP_NS} labeled\n"
    )
    labels = kubectl.json("get", "ns", APP_NS)["metadata"]["labels"]
    assert labels["istio-injection"] == "enabled"

    restarted = kubectl.ok("rollout", "restart", "deploy", "-n", APP_NS)
    assert restarted.splitlines() == [
        "deployment.apps/emoji restarted",
        "deployment.apps/vote-bot restarted",
        "deployment.apps/voting restarted",
        "deployment.apps/web restarted",
    ]
    status = kubectl.ok("rollout", "status", "deploy/web", "-n", APP_NS, "--timeout=10s")
    assert status.strip().endswith('deployment "web" successfully rolled out')

    pods = table(kubectl.ok("get", "pods", "-n", APP_NS))
    assert len(pods) == 5
    assert {(r[1], r[2]) for r in pods[1:]} == {("2/2", "Running")}
    containers = kubectl.ok(
        "get", "pods", "-n", APP_NS, "-l", "app=web-svc", "-o", "jsonpath={.items[0].spec.containers[*].name}"
    )
    assert containers == "web-svc istio-proxy"


def test_label_overwrite_and_removal(kubectl: Kubectl) -> None:
    kubectl.ok("label", "namespace", APP_NS, "istio-injection=enabled")

    error = kubectl.fails("label", "namespace", APP_NS, "istio-injection=disabled")
    assert "already has a value (enabled), and --overwrite is false" in error
    kubectl.ok("label", "namespace", APP_NS, "istio-injection=disabled", "--overwrite")
    assert kubectl.json("get", "ns", APP_NS)["metadata"]["labels"]["istio-injection"] == "disabled"
    assert kubectl.ok("label", "namespace", APP_NS, "istio-injection-") == f"namespace/{APP_NS} unlabeled\n"
    assert "istio-injection" not in kubectl.json("get", "ns", APP_NS)["metadata"]["labels"]


def test_apply_creates_then_reports_unchanged_then_configured(kubectl: Kubectl) -> None:
    first = CONFIG_MAP.format(mode="a")

    assert kubectl.ok("apply", "--validate=false", "-f", "-", stdin=first) == "configmap/settings created\n"
    assert kubectl.ok("apply", "--validate=false", "-f", "-", stdin=first) == "configmap/settings unchanged\n"
    second = CONFIG_MAP.format(mode="b")
    assert (
        kubectl.ok("apply", "--validate=false", "-f", "-", stdin=second) == "configmap/settings configured\n"
    )

    stored = kubectl.json("get", "cm", "settings", "-n", "default")
    assert stored["data"] == {"mode": "b"}
    applied = json.loads(
        stored["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    )
    assert applied["data"] == {"mode": "b"}


def test_apply_the_write_ups_gateway_and_virtual_service(kubectl: Kubectl) -> None:
    created = kubectl.ok("apply", "--validate=false", "-f", "-", stdin=EXPOSE)

    assert created.splitlines() == [
        "gateway.networking.istio.io/emojivoto-gateway created",
        "virtualservice.networking.istio.io/emojivoto created",
    ]
    assert kubectl.ok("apply", "--validate=false", "-f", "-", stdin=EXPOSE).splitlines() == [
        "gateway.networking.istio.io/emojivoto-gateway unchanged",
        "virtualservice.networking.istio.io/emojivoto unchanged",
    ]
    listed = kubectl.ok("get", "vs,gw", "-n", APP_NS).strip().split("\n\n")
    services = table(listed[0])
    assert services[0] == ["NAME", "GATEWAYS", "HOSTS", "AGE"]
    assert services[1][:3] == [
        "virtualservice.networking.istio.io/emojivoto",
        '["emojivoto-gateway"]',
        '["emoji-istio.test.net"]',
    ]
    assert table(listed[1])[1][0] == "gateway.networking.istio.io/emojivoto-gateway"
    stored = kubectl.json("get", "vs", "emojivoto", "-n", APP_NS)
    assert stored["spec"]["http"][0]["route"][0]["destination"] == {"host": "web-svc", "port": {"number": 80}}


def test_patch_with_each_type(kubectl: Kubectl) -> None:
    patched = kubectl.ok(
        "patch", "deploy", "web", "-n", APP_NS, "--type=merge", "-p", '{"spec":{"replicas":2}}'
    )
    assert patched == "deployment.apps/web patched\n"
    kubectl.ok(
        "patch",
        "deploy",
        "web",
        "-n",
        APP_NS,
        "--type=json",
        "-p",
        '[{"op":"replace","path":"/spec/replicas","value":3}]',
    )
    strategic = '{"spec":{"template":{"spec":{"containers":[{"name":"web-svc","image":"web:v12"}]}}}}'
    kubectl.ok("patch", "deploy", "web", "-n", APP_NS, "--type=strategic", "-p", strategic)

    web = kubectl.json("get", "deploy", "web", "-n", APP_NS)
    assert web["spec"]["replicas"] == 3
    [container] = web["spec"]["template"]["spec"]["containers"]
    # Merged by name: the image changed, the ports and env stayed.
    assert container["image"] == "web:v12"
    assert container["ports"][0]["containerPort"] == 8080
    assert len(table(kubectl.ok("get", "pods", "-n", APP_NS, "-l", "app=web-svc"))) == 4
    assert kubectl.ok(
        "patch", "deploy", "web", "-n", APP_NS, "--type=merge", "-p", '{"spec":{"replicas":3}}'
    ) == ("deployment.apps/web patched (no change)\n")


def test_patch_errors_on_a_custom_resource(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "--validate=false", "-f", "-", stdin=EXPOSE)

    error = kubectl.fails("patch", "vs", "emojivoto", "-n", APP_NS, "-p", '{"spec":{"hosts":["a.test"]}}')
    assert error == (
        "error: application/strategic-merge-patch+json is not supported by networking.istio.io/v1, "
        "Kind=VirtualService: the body of the request was in an unknown format - accepted media types "
        "include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )
    error = kubectl.fails(
        "patch", "vs", "emojivoto", "-n", APP_NS, "--type=merge", "-p", '{"spec":{"hosts":"x"}}'
    )
    assert error == (
        'The VirtualService "emojivoto" is invalid: spec.hosts: Invalid value: "string": spec.hosts in body '
        'must be of type array: "string"'
    )
    warned = kubectl.run(
        "patch", "vs", "emojivoto", "-n", APP_NS, "--type=merge", "-p", '{"spec":{"hostz":["x"]}}'
    )
    assert warned.returncode == 0
    assert warned.stderr.strip() == 'Warning: unknown field "spec.hostz"'
    assert warned.stdout == "virtualservice.networking.istio.io/emojivoto patched (no change)\n"
    assert kubectl.json("get", "vs", "emojivoto", "-n", APP_NS)["spec"]["hosts"] == ["emoji-istio.test.net"]


def test_scale(kubectl: Kubectl) -> None:
    assert (
        kubectl.ok("scale", "deploy", "voting", "-n", APP_NS, "--replicas=3")
        == "deployment.apps/voting scaled\n"
    )

    assert table(kubectl.ok("get", "deploy", "voting", "-n", APP_NS))[1][1] == "3/3"
    assert len(kubectl.ok("get", "pods", "-n", APP_NS, "-l", "app=voting-svc", "-o", "name").split()) == 3


def test_delete_objects_and_a_namespace(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "--validate=false", "-f", "-", stdin=CONFIG_MAP.format(mode="a"))

    assert kubectl.ok("delete", "cm", "settings", "-n", "default") == (
        'configmap "settings" deleted from default namespace\n'
    )
    assert kubectl.fails("delete", "cm", "settings", "-n", "default") == (
        'Error from server (NotFound): configmaps "settings" not found'
    )
    assert kubectl.ok("delete", "ns", APP_NS) == f'namespace "{APP_NS}" deleted\n'
    assert (
        kubectl.run("get", "all", "-n", APP_NS).stderr.strip() == f"No resources found in {APP_NS} namespace."
    )
    assert APP_NS not in kubectl.ok("get", "ns", "-o", "name")


def test_deleting_a_crd_removes_its_kind(playground: Playground, kubectl: Kubectl, tmp_path: Path) -> None:
    kubectl.ok("apply", "--validate=false", "-f", "-", stdin=EXPOSE)

    deleted = kubectl.ok("delete", "crd", "virtualservices.networking.istio.io")

    assert (
        deleted
        == 'customresourcedefinition.apiextensions.k8s.io "virtualservices.networking.istio.io" deleted\n'
    )
    # This kubectl still has the kind in its discovery cache: the server answers 404.
    assert kubectl.fails("get", "vs", "-A") == (
        'Error from server (NotFound): Unable to list "networking.istio.io/v1, Resource=virtualservices": '
        "the server could not find the requested resource"
    )
    fresh = kubectl_for(playground, tmp_path, name="fresh")
    assert fresh.fails("get", "vs", "-A") == 'error: the server doesn\'t have a resource type "vs"'
    assert "gateway.networking.istio.io/emojivoto-gateway" in fresh.ok("get", "gw", "-A", "-o", "name")


# ---------------------------------------------------------------- errors


def test_the_errors_kubectl_prints(kubectl: Kubectl) -> None:
    assert (
        kubectl.fails("get", "pod", "nope", "-n", APP_NS)
        == 'Error from server (NotFound): pods "nope" not found'
    )
    assert kubectl.fails("get", "foos") == 'error: the server doesn\'t have a resource type "foos"'
    kubectl.ok("create", "--validate=false", "-f", "-", stdin=CONFIG_MAP.format(mode="a"))
    assert kubectl.fails("create", "--validate=false", "-f", "-", stdin=CONFIG_MAP.format(mode="a")) == (
        'Error from server (AlreadyExists): error when creating "STDIN": configmaps "settings" already exists'
    )
    stale = CONFIG_MAP.format(mode="b").replace(
        "  namespace: default\n", '  namespace: default\n  resourceVersion: "1"\n'
    )
    assert kubectl.fails("replace", "--validate=false", "-f", "-", stdin=stale) == (
        'Error from server (Conflict): error when replacing "STDIN": Operation cannot be fulfilled on '
        'configmaps "settings": the object has been modified; please apply your changes to the latest '
        "version and try again"
    )
    assert kubectl.fails("get", "pods", "-A", "-l", "app in web").startswith(
        "Error from server (BadRequest): "
    )
    invalid = CONFIG_MAP.format(mode="a").replace("name: settings", "name: Bad_Name")
    assert kubectl.fails("apply", "--validate=false", "-f", "-", stdin=invalid).startswith(
        'The ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": '
    )
    missing_ns = CONFIG_MAP.format(mode="a").replace("namespace: default", "namespace: nowhere")
    assert kubectl.fails("create", "--validate=false", "-f", "-", stdin=missing_ns) == (
        'Error from server (NotFound): error when creating "STDIN": namespaces "nowhere" not found'
    )
    assert kubectl.json("get", "cm", "settings", "-n", "default")["data"] == {"mode": "a"}


def test_with_tokens_required_kubectl_is_unauthorized(playground: Playground, tmp_path: Path) -> None:
    playground.hooks.require_tokens({"admin": Grant("admin")})
    # client-go (clientcmd) puts a kubeconfig's token on TLS connections only, and the playground
    # serves plain HTTP: kubectl reaches it without credentials whatever the kubeconfig holds.
    # Tokens and the 403 of a read-only one are covered through the Python client in test_hooks.
    holding_token = kubectl_for(playground, tmp_path, token="admin", name="admin")

    error = holding_token.fails("get", "pods", "-n", APP_NS)

    # Discovery fails first (kubectl logs that), then the request itself.
    assert error.splitlines()[-1] == (
        "error: You must be logged in to the server "
        "(the server has asked for the client to provide credentials)"
    )
    playground.hooks.require_tokens(None)
    assert len(table(holding_token.ok("get", "pods", "-n", APP_NS))) == 5


def test_a_server_error_is_reported(playground: Playground, kubectl: Kubectl) -> None:
    playground.hooks.fail_next(r"/namespaces/emojivoto-istio/services$", count=10, code=500)

    error = kubectl.fails("get", "svc", "-n", APP_NS)

    assert error.startswith("Error from server (InternalError): ")
    assert "the playground was asked to fail this request (500)" in error


# ---------------------------------------------------------------- jobs and logs


def test_a_failed_jobs_log_through_kubectl(playground: Playground, kubectl: Kubectl) -> None:
    playground.api.controller.failing_jobs[("default", "migrate")] = "migration 7 failed: lock held\n"
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "default"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "migrate", "image": "meshbot:dev"}],
                }
            },
        },
    }

    kubectl.ok("apply", "--validate=false", "-f", "-", stdin=json.dumps(manifest))

    jobs = table(kubectl.ok("get", "jobs", "-n", "default"))
    assert jobs[0] == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert jobs[1][:3] == ["migrate", "Failed", "0/1"]
    assert kubectl.ok("logs", "job/migrate", "-n", "default") == "migration 7 failed: lock held\n"
    pods = table(kubectl.ok("get", "pods", "-n", "default"))
    assert pods[1][1:3] == ["0/1", "Error"]


def test_wait_for_a_condition(kubectl: Kubectl) -> None:
    waited = kubectl.ok("wait", "--for=condition=Available", "deploy/web", "-n", APP_NS, "--timeout=10s")

    assert waited == "deployment.apps/web condition met\n"


REAPER_CRONJOB = """\
apiVersion: batch/v1
kind: CronJob
metadata:
  name: reaper
  namespace: default
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: reaper
            image: meshbot:0.1.0
            args: [reap]
"""


def test_cronjobs_are_stored_validated_and_printed(kubectl: Kubectl) -> None:
    assert (
        kubectl.ok("apply", "--validate=false", "-f", "-", stdin=REAPER_CRONJOB)
        == "cronjob.batch/reaper created\n"
    )
    rows = table(kubectl.ok("get", "cronjobs"))
    assert rows[0] == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"]
    assert rows[1][:6] == ["reaper", "* * * * *", "<none>", "False", "0", "<none>"]

    broken = REAPER_CRONJOB.replace('"* * * * *"', '"every minute"').replace(
        "name: reaper\n  ", "name: broken\n  "
    )
    error = kubectl.fails("apply", "--validate=false", "-f", "-", stdin=broken)
    assert 'spec.schedule: Invalid value: "every minute": unparseable schedule' in error
    assert "broken" not in kubectl.ok("get", "cronjobs")


# ---------------------------------------------------------------- openapi: validation and explain


def test_apply_with_default_validation(kubectl: Kubectl) -> None:
    assert kubectl.ok("apply", "-f", "-", stdin=CONFIG_MAP.format(mode="a")) == "configmap/settings created\n"
    assert kubectl.ok("apply", "-f", "-", stdin=EXPOSE).splitlines() == [
        "gateway.networking.istio.io/emojivoto-gateway created",
        "virtualservice.networking.istio.io/emojivoto created",
    ]

    # The server validates (kubectl found fieldValidation in the OpenAPI document) and refuses a
    # field the VirtualService schema does not know, as kubectl's default --validate=strict asks.
    typo = EXPOSE.split("---")[-1].replace("  hosts:", "  hostz:")
    error = kubectl.fails("apply", "-f", "-", stdin=typo)
    assert 'strict decoding error: unknown field "spec.hostz"' in error


def test_explain_reads_the_openapi_documents(kubectl: Kubectl) -> None:
    fault = kubectl.ok("explain", "virtualservice.spec.http.fault")
    assert "KIND:       VirtualService" in fault
    assert "Fault injection policy to apply on HTTP traffic at the client side." in fault
    assert re.search(r"^  abort\t<Object>$", fault, re.MULTILINE)

    replicas = kubectl.ok("explain", "deployment.spec.replicas")
    assert "FIELD: replicas <integer>" in replicas
    assert "Number of desired pods." in replicas


# ---------------------------------------------------------------- create generators (protobuf bodies)


def test_create_generators_send_protobuf_the_server_reads(playground: Playground, kubectl: Kubectl) -> None:
    assert kubectl.ok("create", "namespace", "scratch") == "namespace/scratch created\n"
    assert (
        kubectl.ok("create", "configmap", "c", "--from-literal=a=b", "-n", "scratch")
        == "configmap/c created\n"
    )
    assert (
        kubectl.ok("create", "deployment", "d", "--image=nginx", "--replicas=2", "-n", "scratch")
        == "deployment.apps/d created\n"
    )
    assert kubectl.ok("create", "deployment", "idle", "--image=nginx", "--replicas=0", "-n", "scratch")

    # These went as protobuf, as against a real server (kubectl offers no switch to JSON).
    sent = {r.path: r.content_type for r in playground.hooks.requests if r.method == "POST"}
    assert sent["/api/v1/namespaces"] == "application/vnd.kubernetes.protobuf"
    assert kubectl.json("get", "cm", "c", "-n", "scratch")["data"] == {"a": "b"}
    deployment = kubectl.json("get", "deploy", "d", "-n", "scratch")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx"
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "d"}}
    rows = {row[0]: row[1] for row in table(kubectl.ok("get", "deploy", "-n", "scratch"))[1:]}
    # An explicit zero survives decoding (a pointer field): no default replica appears.
    assert rows == {"d": "2/2", "idle": "0/0"}
    assert kubectl.fails("create", "namespace", "scratch") == (
        'Error from server (AlreadyExists): namespaces "scratch" already exists'
    )


def test_logs_of_a_simulated_pod_say_so(kubectl: Kubectl) -> None:
    lines = kubectl.ok("logs", "deploy/istiod", "-n", "istio-system").splitlines()

    assert len(lines) == 2
    assert "container discovery (docker.io/istio/pilot:" in lines[0]
    assert "simulated pod" in lines[1]
    assert kubectl.fails("logs", "nope", "-n", "istio-system") == (
        'error: error from server (NotFound): pods "nope" not found in namespace "istio-system"'
    )
    assert kubectl.fails("logs", "deploy/istiod", "-c", "nope", "-n", "istio-system").startswith(
        "error: container nope is not valid for pod istiod-"
    )
