"""Effective mTLS modes and setting the namespace-wide PeerAuthentication, on the playground."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mesh.errors import NotFound
from mesh.kube import Kube, for_url
from mesh.mtls import (
    ISTIO_DEFAULT,
    Effective,
    MtlsModeError,
    WorkloadMtls,
    effective_mtls,
    resolve_mtls,
    set_mtls,
)
from playground.runner import Playground

APP = "emojivoto-istio"
WORKLOADS = ("emoji", "vote-bot", "voting", "web")
GROUP, VERSION, PLURAL = "security.istio.io", "v1", "peerauthentications"


@pytest.fixture
def mesh_kube(playground: Playground) -> Iterator[Kube]:
    kube = for_url(playground.url)
    yield kube
    kube.close()


def modes(kube: Kube, namespace: str = APP) -> dict[str, str]:
    return {w.name: w.mode for w in effective_mtls(kube, namespace).workloads}


def policy(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PeerAuthentication",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def create(kube: Kube, manifest: dict[str, Any]) -> None:
    kube.custom.create_namespaced_custom_object(
        GROUP, VERSION, manifest["metadata"]["namespace"], PLURAL, manifest
    )


def read(kube: Kube, namespace: str, name: str = "default") -> dict[str, Any]:
    found: dict[str, Any] = kube.custom.get_namespaced_custom_object(  # type: ignore[assignment]
        GROUP, VERSION, namespace, PLURAL, name
    )
    return found


def test_without_policies_everything_is_permissive(mesh_kube: Kube) -> None:
    report = effective_mtls(mesh_kube, APP)
    assert report.mesh == Effective("PERMISSIVE", ISTIO_DEFAULT)
    assert report.namespace_wide == Effective("PERMISSIVE", ISTIO_DEFAULT)
    assert report.workloads == tuple(WorkloadMtls(w, "PERMISSIVE", ISTIO_DEFAULT) for w in WORKLOADS)


def test_set_strict_then_report(playground: Playground, mesh_kube: Kube) -> None:
    playground.hooks.requests.clear()
    change = set_mtls(mesh_kube, APP, "STRICT")

    assert (change.mode, change.previous, change.written) == ("STRICT", None, True)
    [write] = playground.hooks.writes()
    assert (write.method, write.path) == ("POST", f"/apis/{GROUP}/{VERSION}/namespaces/{APP}/{PLURAL}")
    assert "fieldValidation=Strict" in write.query
    stored = read(mesh_kube, APP)
    assert stored["spec"] == {"mtls": {"mode": "STRICT"}}
    assert stored["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "meshbot"}

    report = effective_mtls(mesh_kube, APP)
    source = f"PeerAuthentication {APP}/default (namespace-wide)"
    assert report.namespace_wide == Effective("STRICT", source)
    assert report.mesh.mode == "PERMISSIVE"
    assert report.workloads == tuple(WorkloadMtls(w, "STRICT", source) for w in WORKLOADS)
    # Other namespaces are untouched.
    assert effective_mtls(mesh_kube, "default").namespace_wide.mode == "PERMISSIVE"


def test_update_existing_policy_and_repeat_is_a_no_op(playground: Playground, mesh_kube: Kube) -> None:
    set_mtls(mesh_kube, APP, "STRICT")
    change = set_mtls(mesh_kube, APP, "permissive")
    assert (change.mode, change.previous, change.written) == ("PERMISSIVE", "STRICT", True)
    assert read(mesh_kube, APP)["spec"] == {"mtls": {"mode": "PERMISSIVE"}}
    patch = playground.hooks.writes()[-1]
    assert patch.method == "PATCH" and patch.content_type.startswith("application/merge-patch+json")
    assert "fieldValidation=Strict" in patch.query

    playground.hooks.requests.clear()
    assert not set_mtls(mesh_kube, APP, "PERMISSIVE").written
    assert playground.hooks.writes() == []


def test_mesh_wide_then_namespace_then_workload(mesh_kube: Kube) -> None:
    set_mtls(mesh_kube, "istio-system", "STRICT")
    mesh_source = "PeerAuthentication istio-system/default (mesh-wide)"
    report = effective_mtls(mesh_kube, APP)
    assert report.mesh == Effective("STRICT", mesh_source)
    assert report.namespace_wide == Effective("STRICT", mesh_source)
    assert effective_mtls(mesh_kube, "istio-system").namespace_wide == Effective("STRICT", mesh_source)

    # A namespace policy that leaves the mode UNSET defers to the mesh.
    create(mesh_kube, policy("inherit", APP, {"mtls": {"mode": "UNSET"}}))
    assert set(modes(mesh_kube).values()) == {"STRICT"}

    create(
        mesh_kube,
        policy(
            "web-plain",
            APP,
            {
                "selector": {"matchLabels": {"app": "web-svc"}},
                "mtls": {"mode": "DISABLE"},
                "portLevelMtls": {"8080": {"mode": "PERMISSIVE"}},
            },
        ),
    )
    web = next(w for w in effective_mtls(mesh_kube, APP).workloads if w.name == "web")
    assert web == WorkloadMtls(
        "web", "DISABLE", f"PeerAuthentication {APP}/web-plain (workload)", ((8080, "PERMISSIVE"),)
    )
    assert modes(mesh_kube) == {"emoji": "STRICT", "vote-bot": "STRICT", "voting": "STRICT", "web": "DISABLE"}


def test_resolution_rules_without_a_cluster() -> None:
    def pa(name: str, namespace: str, created: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
            "spec": spec,
        }

    policies = [
        pa("newer", "shop", "2026-01-02T00:00:00Z", {"mtls": {"mode": "DISABLE"}}),
        pa("older", "shop", "2026-01-01T00:00:00Z", {"mtls": {"mode": "STRICT"}}),
        pa("unset", "shop", "2026-01-01T00:00:00Z", {"selector": {"matchLabels": {"app": "a"}}}),
        pa("other-ns", "elsewhere", "2020-01-01T00:00:00Z", {"mtls": {"mode": "DISABLE"}}),
    ]
    report = resolve_mtls(policies, "shop", {"a": {"app": "a"}, "b": {"app": "b"}})
    assert report.namespace_wide == Effective("STRICT", "PeerAuthentication shop/older (namespace-wide)")
    assert [(w.name, w.mode, w.source) for w in report.workloads] == [
        ("a", "STRICT", "PeerAuthentication shop/older (namespace-wide)"),
        ("b", "STRICT", "PeerAuthentication shop/older (namespace-wide)"),
    ]


# ----------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("namespace", "mode", "error", "message"),
    [
        (APP, "STRICTEST", MtlsModeError, "mTLS mode 'STRICTEST' is not one of STRICT, PERMISSIVE, DISABLE"),
        (APP, "UNSET", MtlsModeError, "mTLS mode 'UNSET' is not one of"),
        (APP, "", MtlsModeError, "mTLS mode '' is not one of"),
        ("emojivoto", "STRICT", NotFound, "namespace emojivoto does not exist"),
    ],
)
def test_bad_input_is_refused_and_nothing_changes(
    playground: Playground, mesh_kube: Kube, namespace: str, mode: str, error: type[Exception], message: str
) -> None:
    playground.hooks.requests.clear()
    with pytest.raises(error) as raised:
        set_mtls(mesh_kube, namespace, mode)
    assert message in str(raised.value)
    assert playground.hooks.writes() == []


def test_report_for_a_missing_namespace(mesh_kube: Kube) -> None:
    with pytest.raises(NotFound, match="namespace emojivoto does not exist"):
        effective_mtls(mesh_kube, "emojivoto")


def test_a_default_policy_with_a_selector_is_not_touched(playground: Playground, mesh_kube: Kube) -> None:
    create(
        mesh_kube,
        policy(
            "default", APP, {"selector": {"matchLabels": {"app": "web-svc"}}, "mtls": {"mode": "DISABLE"}}
        ),
    )
    playground.hooks.requests.clear()
    with pytest.raises(MtlsModeError, match=f"PeerAuthentication {APP}/default selects workloads"):
        set_mtls(mesh_kube, APP, "STRICT")
    assert playground.hooks.writes() == []


def test_an_older_namespace_policy_would_win_so_it_is_refused(
    playground: Playground, mesh_kube: Kube
) -> None:
    create(mesh_kube, policy("team-policy", APP, {"mtls": {"mode": "PERMISSIVE"}}))
    playground.hooks.requests.clear()
    with pytest.raises(
        MtlsModeError, match=f"PeerAuthentication {APP}/team-policy \\(namespace-wide\\) already sets"
    ):
        set_mtls(mesh_kube, APP, "STRICT")
    assert playground.hooks.writes() == []


def test_without_istio_the_error_says_so(make_playground: Callable[..., Playground]) -> None:
    bare = make_playground("article-bare")
    kube = for_url(bare.url)
    with pytest.raises(
        NotFound,
        match=re.escape("peerauthentications.security.istio.io/v1 are not served: is Istio installed"),
    ):
        effective_mtls(kube, APP)
    with pytest.raises(NotFound, match="is Istio installed"):
        set_mtls(kube, APP, "STRICT")
    assert bare.hooks.writes() == []
