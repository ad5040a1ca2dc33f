"""What a fault costs the API server before it takes effect: the Service, the namespace's
VirtualServices, the patch. The pre-flight's reads (pods, Prometheus) come after the patch, so a
slow Prometheus never delays a fault."""

from __future__ import annotations

from bot.pipeline import Pipeline
from core.policy import Policy
from core.store import Actor, Source, Store
from mesh.kube import for_url
from mesh.prometheus import Prometheus
from playground.runner import Playground
from tests.support.sockets import hung_server

NS = "emojivoto-istio"
ALICE = Actor(user_id="U0ALICE", team_id="T0001", display_name="alice")


def test_a_fault_reaches_the_cluster_after_three_requests_and_a_hung_prometheus(
    playground: Playground, store: Store
) -> None:
    with hung_server() as url:
        pipeline = Pipeline(
            store=store,
            kube=for_url(playground.url),
            policy=Policy.model_validate({"roles": {"admin": {"users": [ALICE.user_id]}}}),
            prometheus=Prometheus(url, timeout=1),
        )
        playground.hooks.requests.clear()
        reply = pipeline.run(f"fault delay 3s web-svc.{NS} for 5m", actor=ALICE, source=Source.SLACK)
    assert reply.ok, reply.text
    # The Prometheus it could not read is said, not waited for before the fault went in.
    assert any("recent traffic to web-svc" in w for w in reply.data["warnings"])
    calls = [(r.method, r.path) for r in playground.hooks.requests]
    written = next(i for i, (method, _) in enumerate(calls) if method in ("POST", "PATCH"))
    assert calls[: written + 1] == [
        ("GET", f"/api/v1/namespaces/{NS}/services/web-svc"),
        ("GET", f"/apis/networking.istio.io/v1/namespaces/{NS}/virtualservices"),
        ("POST", f"/apis/networking.istio.io/v1/namespaces/{NS}/virtualservices"),
    ]
