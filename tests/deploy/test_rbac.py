"""The prod overlay's RBAC, proven against the calls meshbot makes: the write-up's whole workflow
runs as meshbot's ServiceAccount under Kubernetes' RBAC authorizer without one 403, and what
meshbot does not need is refused with the API server's own 403."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import kubernetes.client
import pytest
from kubernetes.client.exceptions import ApiException

from playground.hooks import Grant
from playground.rbac import Authorizer, service_account_user
from tests.conftest import kube_client_for
from tests.deploy.test_manifests import ROOT, kubectl
from tests.scenarios.conftest import NS, Meshbot

SA_TOKEN = "meshbot-serviceaccount-token"
ADMIN_TOKEN = "cluster-admin-token"
SA_USER = "system:serviceaccount:meshbot:meshbot"
HOST = "emoji-istio.test.net"
POD = {"spec": {"containers": [{"name": "x", "image": "busybox:1.36"}], "restartPolicy": "Never"}}

pytestmark = pytest.mark.timeout(90)


def as_meshbot(make_meshbot: Callable[..., Meshbot], overlay: str = "deploy/overlays/prod") -> Meshbot:
    """The write-up's cluster with `overlay` applied by an administrator, then RBAC switched on
    and meshbot's kubeconfig holding its ServiceAccount's token."""
    mb = make_meshbot("article", leader=False)
    # kubectl's default validation, against the OpenAPI the playground serves, as on a cluster.
    applied = kubectl(mb.pg, mb.tmp, "apply", "-k", str(ROOT / overlay))
    assert applied.returncode == 0, applied.stderr
    # The lifecycle leader a running replica would be: faults are refused without one.
    mb.lead_elsewhere()
    user, groups = service_account_user("meshbot", "meshbot")
    mb.pg.hooks.require_tokens(
        {
            SA_TOKEN: Grant(user, groups=groups),
            ADMIN_TOKEN: Grant("kubernetes-admin", groups=("system:masters",)),
        }
    )
    mb.pg.hooks.authorizer = Authorizer(mb.pg.api.store)
    # The test reads the cluster back as an administrator; meshbot acts as its ServiceAccount.
    mb.api = kube_client_for(mb.pg, ADMIN_TOKEN)
    mb.env["KUBECONFIG"] = str(mb.pg.kubeconfig(mb.tmp / "serviceaccount.kubeconfig", token=SA_TOKEN))
    return mb


def can_i(mb: Meshbot, verb: str, resource: str, namespace: str, **more: str) -> bool:
    """What `kubectl auth can-i` asks: a SelfSubjectAccessReview, sent with meshbot's token.
    (kubectl itself puts a kubeconfig's token on TLS connections only; the playground is http.)"""
    plural, _, group = resource.partition(".")
    with kube_client_for(mb.pg, SA_TOKEN) as sa:
        review = kubernetes.client.AuthorizationV1Api(sa).create_self_subject_access_review(
            {
                "spec": {
                    "resourceAttributes": {
                        "verb": verb,
                        "group": group,
                        "resource": plural,
                        "namespace": namespace,
                        **more,
                    }
                }
            }
        )
    return bool(review.status.allowed)


def forbidden(mb: Meshbot) -> list[str]:
    return [f"{r.method} {r.path}" for r in mb.pg.hooks.requests if r.status == 403]


def test_the_write_up_runs_as_meshbots_service_account_without_a_403(
    make_meshbot: Callable[..., Meshbot],
) -> None:
    mb = as_meshbot(make_meshbot)

    assert "istiod" in mb.ok("status")
    assert "Restarted 4 deployment(s)" in mb.ok(f"inject {NS} --restart")
    mb.ok(f"expose web-svc.{NS} host={HOST} gateway=emojivoto")
    abort_id = mb.inject_fault(f"fault abort 500 50% web-svc.{NS}")
    # Expiry: the process waits for the fault's end and ends it itself.
    expired = mb.run(f"fault delay 3s web-svc.{NS} for 1s", wait=True)
    assert expired.exit_code == 0, expired.output
    # The dead man's switch: a fault whose expiry passed while nobody ran, removed by `meshbot reap`.
    reaped_id = mb.inject_fault(f"fault delay 1s web-svc.{NS} for 1s")
    time.sleep(1.2)
    reaped = mb.cli("reap", "--grace", "0s")
    assert reaped.exit_code == 0, reaped.output
    assert reaped_id not in str(mb.virtual_service("emojivoto")["metadata"].get("annotations"))
    mb.ok(f"fault clear {abort_id}")
    assert mb.ok(f"mtls {NS}").startswith(f"mTLS in {NS}: PERMISSIVE")
    mb.ok(f"mtls strict {NS}")
    mb.ok(f"unexpose {HOST} -n {NS}")
    mb.ok(f"uninject {NS}")

    assert forbidden(mb) == []
    experiments = mb.experiments()
    assert {e.state for e in experiments.values()} == {"ended"}
    assert len(experiments) == 3
    # The requests really were made as the ServiceAccount, under RBAC: the admin wrote nothing.
    assert mb.writes(), "meshbot wrote nothing"


def test_what_meshbot_does_not_need_is_forbidden(make_meshbot: Callable[..., Meshbot]) -> None:
    mb = as_meshbot(make_meshbot)
    with kube_client_for(mb.pg, SA_TOKEN) as sa:
        apps = kubernetes.client.AppsV1Api(sa)
        core = kubernetes.client.CoreV1Api(sa)
        batch = kubernetes.client.BatchV1Api(sa)
        denied = [
            lambda: apps.delete_namespaced_deployment("web", NS),
            lambda: core.read_namespaced_secret("anything", "kube-system"),
            lambda: core.list_secret_for_all_namespaces(),
            lambda: batch.create_namespaced_job(
                "meshbot", {"metadata": {"name": "x"}, "spec": {"template": POD}}
            ),
            lambda: core.create_namespaced_pod(NS, {"metadata": {"name": "x"}, **POD}),
            lambda: apps.patch_namespaced_deployment_scale("web", NS, {"spec": {"replicas": 0}}),
            lambda: core.delete_namespace(NS),
        ]
        statuses = []
        for call in denied:
            with pytest.raises(ApiException) as caught:
                call()
            statuses.append(caught.value.status)
        assert statuses == [403] * len(denied)

        with pytest.raises(ApiException) as caught:
            apps.delete_namespaced_deployment("web", NS)
    # Word for word what kube-apiserver answers, so kubectl and clients show the same line.
    assert caught.value.body is not None
    status = json.loads(caught.value.body)
    assert status["reason"] == "Forbidden"
    assert status["message"] == (
        f'deployments.apps "web" is forbidden: User "{SA_USER}" cannot delete resource "deployments" '
        f'in API group "apps" in the namespace "{NS}"'
    )
    assert status["details"] == {"name": "web", "group": "apps", "kind": "deployments"}


def test_self_subject_access_review_as_meshbot(make_meshbot: Callable[..., Meshbot]) -> None:
    mb = as_meshbot(make_meshbot)
    assert can_i(mb, "patch", "deployments.apps", NS)
    assert can_i(mb, "patch", "virtualservices.networking.istio.io", NS)
    assert can_i(mb, "update", "leases.coordination.k8s.io", "meshbot", name="meshbot-lifecycle")
    assert not can_i(mb, "update", "leases.coordination.k8s.io", "meshbot", name="kube-scheduler")
    assert not can_i(mb, "delete", "deployments.apps", NS)
    assert not can_i(mb, "get", "secrets", "kube-system")
    assert not can_i(mb, "create", "jobs.batch", "meshbot")
    assert not can_i(mb, "create", "jobs.batch", "meshbot-installer")
    assert not can_i(mb, "patch", "deployments.apps", NS, subresource="scale")


def test_only_the_installer_component_lets_meshbot_create_jobs(
    make_meshbot: Callable[..., Meshbot], tmp_path: Path
) -> None:
    overlay = tmp_path / "with-installer"
    overlay.mkdir()
    # Kustomize takes only relative paths to other kustomizations.
    prod = os.path.relpath(ROOT / "deploy/overlays/prod", overlay)
    installer = os.path.relpath(ROOT / "deploy/components/installer", overlay)
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{prod}]\ncomponents: [{installer}]\n"
    )
    mb = as_meshbot(make_meshbot, str(overlay))
    assert can_i(mb, "create", "jobs.batch", "meshbot-installer")
    assert can_i(mb, "get", "pods", "meshbot-installer", subresource="log")
    assert not can_i(mb, "create", "jobs.batch", "meshbot")
