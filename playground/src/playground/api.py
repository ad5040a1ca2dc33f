"""What the cluster's moving parts (admission, controllers, the Istio simulation) may ask of the API
server, and the address of a request.

They are called by the API server and call back into it; depending on this interface rather than on
`apiserver` lets it import them like any other module, with no import cycle to dodge.
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random
from typing import Any, Protocol

from playground.meta import Obj
from playground.resources import Registry, ResourceType
from playground.state import ObjectStore


@dataclass(frozen=True)
class Target:
    rtype: ResourceType
    version: str
    namespace: str  # "" for cluster-scoped or all-namespaces
    name: str = ""
    subresource: str = ""


class ClusterApi(Protocol):
    store: ObjectStore
    registry: Registry
    # Every random choice (names, IPs, ports) comes from here, so a seed replays identically.
    random: Random
    logs: dict[tuple[str, str], str]

    def now(self) -> str: ...

    # Writes through the API server's own paths, so validation and admission apply; the Result is not
    # read by these callers.
    def create(self, target: Target, body: Any) -> object: ...

    def delete(self, target: Target) -> object: ...

    def remove_object(
        self, rtype: ResourceType, namespace: str, name: str, propagation: str
    ) -> Obj | None: ...
