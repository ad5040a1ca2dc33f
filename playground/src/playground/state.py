"""The playground's object storage: objects by type, one cluster-wide resourceVersion, watch events.

Mirrors etcd as the API server uses it: every write gets the next resourceVersion, and a bounded
history of events per type lets a watch resume from a resourceVersion until it is compacted away.
"""

from __future__ import annotations

import asyncio
import builtins
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from playground.errors import ApiError

TypeKey = tuple[str, str]  # (group, plural)
ObjectKey = tuple[str, str]  # (namespace or "", name)
Obj = dict[str, Any]


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED
    resource_version: int
    object: Obj


def clone(value: Any) -> Any:
    """A deep copy of JSON-like data; copy.deepcopy's generality costs ~3x, and the store copies
    every object it hands out or takes in."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


class Subscription:
    """One open watch: events for a type are pushed into an asyncio queue on the watcher's loop."""

    def __init__(self, key: TypeKey, loop: asyncio.AbstractEventLoop) -> None:
        self.key = key
        self.loop = loop
        self.queue: asyncio.Queue[WatchEvent] = asyncio.Queue()

    def push(self, event: WatchEvent) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, event)


ChangeListener = Callable[[str, TypeKey, Obj], None]


class ObjectStore:
    def __init__(self, history_per_type: int = 20_000) -> None:
        # Re-entrant: the controller writes while the API call that triggered it holds the lock.
        self.lock = threading.RLock()
        self._revision = 0
        self._history_per_type = history_per_type
        self._objects: dict[TypeKey, dict[ObjectKey, Obj]] = {}
        self._events: dict[TypeKey, deque[WatchEvent]] = {}
        # The oldest resourceVersion a watch on a type may still resume from.
        self._compacted: dict[TypeKey, int] = {}
        self._subscriptions: list[Subscription] = []
        self._listeners: list[ChangeListener] = []

    @property
    def revision(self) -> int:
        return self._revision

    def add_listener(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    def get(self, key: TypeKey, namespace: str, name: str) -> Obj | None:
        with self.lock:
            obj = self._objects.get(key, {}).get((namespace, name))
            return clone(obj) if obj is not None else None

    def exists(self, key: TypeKey, namespace: str, name: str) -> bool:
        with self.lock:
            return (namespace, name) in self._objects.get(key, {})

    def list(self, key: TypeKey, namespace: str | None = None) -> tuple[list[Obj], int]:
        """Objects of a type (in one namespace or all), sorted by namespace and name."""
        with self.lock:
            items = self._objects.get(key, {})
            selected = [
                clone(obj) for (ns, _), obj in sorted(items.items()) if namespace is None or ns == namespace
            ]
            return selected, self._revision

    # From here on `list` in this class body names the method above, hence builtins.list.
    def keys_in_namespace(self, namespace: str) -> builtins.list[tuple[TypeKey, str]]:
        with self.lock:
            return [
                (key, name) for key, items in self._objects.items() for (ns, name) in items if ns == namespace
            ]

    def write(self, key: TypeKey, obj: Obj) -> Obj:
        """Stores a new or changed object under the next resourceVersion and tells watchers."""
        with self.lock:
            meta = obj["metadata"]
            object_key = (meta.get("namespace", ""), meta["name"])
            bucket = self._objects.setdefault(key, {})
            event_type = "MODIFIED" if object_key in bucket else "ADDED"
            self._revision += 1
            meta["resourceVersion"] = str(self._revision)
            stored = clone(obj)
            bucket[object_key] = stored
            self._emit(key, event_type, stored)
            return clone(stored)

    def remove(self, key: TypeKey, namespace: str, name: str) -> Obj | None:
        with self.lock:
            stored = self._objects.get(key, {}).pop((namespace, name), None)
            if stored is None:
                return None
            self._revision += 1
            stored["metadata"]["resourceVersion"] = str(self._revision)
            self._emit(key, "DELETED", stored)
            return clone(stored)

    def drop_type(self, key: TypeKey) -> None:
        with self.lock:
            self._objects.pop(key, None)

    def _emit(self, key: TypeKey, event_type: str, stored: Obj) -> None:
        event = WatchEvent(event_type, self._revision, clone(stored))
        history = self._events.setdefault(key, deque())
        history.append(event)
        if len(history) > self._history_per_type:
            dropped = history.popleft()
            self._compacted[key] = dropped.resource_version
        for sub in self._subscriptions:
            if sub.key == key:
                sub.push(event)
        for listener in self._listeners:
            listener(event_type, key, stored)

    def export_state(self) -> tuple[int, Any, Any, Any]:
        """Objects, history and revision, for ApiServer.snapshot (callers copy before sharing)."""
        with self.lock:
            return self._revision, self._objects, self._events, self._compacted

    def import_state(self, state: tuple[int, Any, Any, Any]) -> None:
        """Replaces everything stored by an exported state; watchers and listeners stay."""
        with self.lock:
            self._revision, self._objects, self._events, self._compacted = state

    def compact(self, key: TypeKey) -> None:
        """Forgets a type's event history, as etcd compaction does (test hook for 410 Gone)."""
        with self.lock:
            self._events.pop(key, None)
            self._compacted[key] = self._revision

    def subscribe(
        self, key: TypeKey, since: int | None, loop: asyncio.AbstractEventLoop
    ) -> tuple[Subscription, builtins.list[WatchEvent]]:
        """Opens a watch; returns past events after `since` (None: none) to replay first.

        Raises 410 Gone when `since` is older than the retained history, as the API server does.
        """
        with self.lock:
            backlog: builtins.list[WatchEvent] = []
            if since is not None:
                compacted = self._compacted.get(key, 0)
                if since < compacted:
                    raise ApiError(
                        410,
                        "Expired",
                        f"too old resource version: {since} ({compacted})",
                    )
                backlog = [e for e in self._events.get(key, ()) if e.resource_version > since]
            sub = Subscription(key, loop)
            self._subscriptions.append(sub)
            return sub, backlog

    def unsubscribe(self, sub: Subscription) -> None:
        with self.lock:
            if sub in self._subscriptions:
                self._subscriptions.remove(sub)
