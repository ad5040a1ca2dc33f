"""What a verb gets besides its parsed command: who asks, from where, and the clients to act with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, cast

from core.clock import utcnow
from core.errors import Refused
from core.policy import Policy
from core.store import Actor, Source, Store, get_binding

# Only named in annotations: every command builds a Context, and `help` should not import what
# installing, the Lease or telemetry need.
if TYPE_CHECKING:
    from mesh.clusters import Clusters
    from mesh.install import Installer
    from mesh.kiali import Kiali
    from mesh.kube import Kube
    from mesh.lease import Leadership
    from mesh.prometheus import Prometheus

_UNREAD = object()


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
    _binding: object = field(default=_UNREAD, init=False, repr=False, compare=False)

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

    def binding(self) -> tuple[str, str] | None:
        """The channel's bound (cluster, namespace), read once per command: authorization, the
        confirm step, the cluster choice and the verb all ask."""
        if self._binding is _UNREAD:
            found = None
            if self.channel:
                with self.store.read() as session:
                    bound = get_binding(session=session, channel=self.channel)
                    if bound is not None:
                        found = (bound.cluster, bound.namespace)
            self._binding = found
        return cast(tuple[str, str] | None, self._binding)

    def default_namespace(self) -> str | None:
        bound = self.binding()
        return bound[1] if bound is not None else self.policy.default_namespace

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
