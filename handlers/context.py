"""What a verb gets besides its parsed command: who asks, from where, and the clients to act with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from core.clock import utcnow
from core.errors import Refused
from core.policy import Policy
from core.store import Actor, Source, Store, get_binding
from mesh.clusters import Clusters
from mesh.install import Installer
from mesh.kiali import Kiali
from mesh.kube import Kube
from mesh.lease import Leadership
from mesh.prometheus import Prometheus


@dataclass
class Context:
    actor: Actor
    source: Source
    channel: str | None
    command_text: str
    request_id: str
    kube: Kube
    store: Store
    policy: Policy
    # The cluster the command acts on (the channel's binding, else the default) and its client.
    cluster: str = "default"
    clock: Callable[[], datetime] = utcnow
    on_progress: Callable[[str], None] = lambda _line: None
    # How Istio is installed on this cluster; None where no installer is configured.
    installer: Installer | None = None
    # Every configured cluster, for the verbs that name another one (`use … cluster=`).
    clusters: Clusters | None = None
    # Who ends faults on time (the lifecycle leader); None where the caller ends them itself
    # (`meshbot run --wait`) or a test drives the lifecycle by hand.
    leadership: Callable[[], Leadership] | None = None
    # The command's words after any `/mesh`, split once by the pipeline; nothing re-tokenises the text.
    words: tuple[str, ...] = ()
    # Where telemetry is read from; None where no Prometheus is configured.
    prometheus: Prometheus | None = None
    # Kiali draws `graph` when configured; Prometheus is the fallback.
    kiali: Kiali | None = None

    def now(self) -> datetime:
        return self.clock()

    def kube_of(self, cluster: str | None) -> Kube:
        """The client of a named cluster (an experiment's, say), which need not be this channel's."""
        if cluster is None or cluster == self.cluster or self.clusters is None:
            return self.kube
        return self.clusters.kube(cluster)

    def default_namespace(self) -> str | None:
        if self.channel:
            with self.store.read() as session:
                binding = get_binding(session=session, channel=self.channel)
                if binding is not None:
                    return binding.namespace
        return self.policy.default_namespace

    def namespace(self, explicit: str | None) -> str:
        """The namespace a command means: named in it, else the channel's binding, else the policy's."""
        chosen = explicit or self.default_namespace()
        if not chosen:
            raise Refused(
                "no namespace given and this channel has no default: name one "
                "(`web-svc.emojivoto-istio` or `-n emojivoto-istio`) or bind one with "
                "`use emojivoto-istio`"
            )
        return chosen
