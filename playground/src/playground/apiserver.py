"""The API server's semantics, free of HTTP: create, get, list, replace, patch, delete, watch.

Each call validates like kube-apiserver (Status errors with the right reason and code), assigns
server-set metadata, writes through the object store and then lets the controller catch up, so a
client reading right after a write sees what a settled cluster would show.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import json
import pickle
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from playground import admission, errors
from playground.api import Target
from playground.controller import Controller
from playground.errors import ApiError
from playground.meta import Obj, dig, rfc3339
from playground.patch import apply_json_patch, apply_merge_patch, apply_strategic_merge_patch
from playground.resources import CRD_TYPE, Registry, ResourceType, type_from_crd
from playground.schema import validate as validate_schema
from playground.selectors import parse_field_selector, parse_label_selector
from playground.state import ObjectStore, Subscription, WatchEvent
from playground.validation import immutable_causes, name_causes, validate_builtin

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH)

# Types whose DELETE answers with the object rather than a Status, as upstream's registries do.
_DELETE_RETURNS_OBJECT = {("", "pods"), ("", "namespaces")}

_CLOSE = WatchEvent("CLOSE", 0, {})


@dataclass
class Result:
    """An object (or list) to send back, with the HTTP status and any Warning headers."""

    body: Obj
    code: int = 200
    warnings: list[str] = field(default_factory=list)


class ApiServer:
    def __init__(self, *, seed: int = 0, clock: Callable[[], float] = time.time) -> None:
        self.registry = Registry()
        self.store = ObjectStore()
        self.clock = clock
        self.random = random.Random(seed)
        self.logs: dict[tuple[str, str], str] = {}
        self.controller = Controller(self)

    def snapshot(self) -> bytes:
        """The state a seed leaves behind, so further servers can start from it without re-seeding."""
        with self.store.lock:
            return pickle.dumps(
                (self.store.export_state(), self.random.getstate(), self.logs, self.controller.pod_ips),
                protocol=pickle.HIGHEST_PROTOCOL,
            )

    def restore(self, snapshot: bytes) -> None:
        """Takes over the state of `snapshot()`; served custom kinds follow from the stored CRDs."""
        # Unpickling allocates ~100k objects: collections triggered midway would scan them (and the
        # rest of the heap) for nothing, adding up to ~0.1 s to a start.
        collecting = gc.isenabled()
        gc.disable()
        try:
            # Only ever bytes this process made itself with snapshot().
            store_state, random_state, logs, pod_ips = pickle.loads(snapshot)  # noqa: S301
        finally:
            if collecting:
                gc.enable()
        with self.store.lock:
            self.store.import_state(store_state)
            self.random.setstate(random_state)
            self.logs = logs
            self.controller.pod_ips = pod_ips
            # Read in place: copying the large Istio CRDs would cost more than the rest of a start.
            for crd in store_state[1].get(CRD_TYPE.key, {}).values():
                self.registry.add(type_from_crd(crd))

    # ----------------------------------------------------------------- helpers

    def now(self) -> str:
        return rfc3339(self.clock())

    def new_uid(self) -> str:
        return str(uuid.UUID(int=self.random.getrandbits(128), version=4))

    def _presented(self, obj: Obj, rtype: ResourceType, version: str) -> Obj:
        obj["apiVersion"] = rtype.api_version(version)
        obj["kind"] = rtype.kind
        return obj

    def _namespace_guard(self, rtype: ResourceType, namespace: str) -> None:
        if not rtype.namespaced:
            return
        ns = self.store.get(("", "namespaces"), "", namespace)
        if ns is None:
            raise errors.not_found("namespaces", namespace)
        if dig(ns, "status", "phase") == "Terminating":
            raise ApiError(
                403,
                "Forbidden",
                f"{rtype.qualified} is forbidden: unable to create new content in namespace "
                f"{namespace} because it is being terminated",
            )

    def _check_type_fields(self, target: Target, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        expected = target.rtype.api_version(target.version)
        if body.get("apiVersion") not in (None, expected):
            raise errors.bad_request(
                f"the API version in the data ({body['apiVersion']}) does not match the expected "
                f"API version ({expected})"
            )
        if body.get("kind") not in (None, target.rtype.kind):
            raise errors.bad_request(
                f"the kind in the data ({body['kind']}) does not match the expected kind "
                f"({target.rtype.kind})"
            )
        body = copy.deepcopy(body)
        body["apiVersion"] = target.rtype.api_version(target.rtype.storage_version)
        body["kind"] = target.rtype.kind
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if target.rtype.namespaced:
            if meta.get("namespace") not in (None, "", target.namespace):
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = target.namespace
        else:
            meta.pop("namespace", None)
        return body

    def _validate(
        self, target: Target, obj: Obj, field_validation: str, more_causes: list[errors.Cause] | None = None
    ) -> list[str]:
        """Validates an object about to be stored; returns warnings. Prunes unknown CR fields."""
        rtype = target.rtype
        name = obj["metadata"]["name"]
        causes = name_causes(rtype.kind, name)
        warnings: list[str] = []
        if rtype.builtin:
            causes += validate_builtin(obj)
        else:
            schema = rtype.schemas.get(target.version)
            if schema is not None:
                result = validate_schema(obj, schema)
                causes += result.causes
                if result.unknown_fields:
                    if field_validation == "Strict":
                        listed = ", ".join(f'unknown field "{p.lstrip(".")}"' for p in result.unknown_fields)
                        raise errors.bad_request(
                            f'{rtype.kind} in version "{target.version}" cannot be handled as a '
                            f"{rtype.kind}: strict decoding error: {listed}"
                        )
                    if field_validation != "Ignore":
                        warnings += [f'unknown field "{p.lstrip(".")}"' for p in result.unknown_fields]
                # What is stored is the pruned and defaulted object, even when nothing was pruned.
                obj.clear()
                obj.update(result.pruned)
        causes += more_causes or []
        if causes:
            raise errors.invalid(rtype.kind, name, causes, group=rtype.group)
        return warnings

    def _reconcile(self) -> None:
        self.controller.reconcile()

    # ----------------------------------------------------------------- verbs

    def get(self, target: Target) -> Result:
        obj = self.store.get(target.rtype.key, target.namespace, target.name)
        if obj is None:
            raise errors.not_found(target.rtype.plural, target.name, target.rtype.group)
        if target.subresource == "scale":
            return Result(self._scale_of(obj))
        return Result(self._presented(obj, target.rtype, target.version))

    def list(
        self,
        target: Target,
        *,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_token: str = "",
    ) -> Result:
        rtype = target.rtype
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector, rtype.field_selectors)
        if (
            target.namespace
            and rtype.namespaced
            and not self.store.exists(("", "namespaces"), "", target.namespace)
        ):
            # A real API server lists an empty collection for a missing namespace.
            pass
        items, revision = self.store.list(rtype.key, target.namespace or None)
        selected = [
            o for o in items if labels.matches(o["metadata"].get("labels") or {}) and fields.matches(o)
        ]
        start = 0
        if continue_token:
            try:
                start = int(json.loads(continue_token)["start"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(
                    410,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent list result.",
                ) from None
        end = start + limit if limit > 0 else len(selected)
        page = selected[start:end]
        list_meta: Obj = {"resourceVersion": str(revision)}
        if end < len(selected):
            list_meta["continue"] = json.dumps({"start": end})
            list_meta["remainingItemCount"] = len(selected) - end
        for o in page:
            if rtype.builtin:
                # Upstream omits kind/apiVersion on the items of built-in lists.
                o.pop("kind", None)
                o.pop("apiVersion", None)
            else:
                self._presented(o, rtype, target.version)
        return Result(
            {
                "kind": rtype.list_kind,
                "apiVersion": rtype.api_version(target.version),
                "metadata": list_meta,
                "items": page,
            }
        )

    def create(
        self, target: Target, body: Any, *, field_validation: str = "Warn", dry_run: bool = False
    ) -> Result:
        rtype = target.rtype
        obj = self._check_type_fields(target, body)
        meta = obj["metadata"]
        with self.store.lock:
            if not meta.get("name"):
                if meta.get("generateName"):
                    meta["name"] = self._generate_name(rtype, target.namespace, meta["generateName"])
                else:
                    raise errors.invalid(
                        rtype.kind,
                        "",
                        [
                            errors.Cause(
                                "FieldValueRequired",
                                "Required value: name or generateName is required",
                                "metadata.name",
                            )
                        ],
                        group=rtype.group,
                    )
            self._namespace_guard(rtype, target.namespace)
            warnings = self._validate(target, obj, field_validation)
            if obj["metadata"].get("resourceVersion") and not dry_run:
                # etcd3's store refuses this before it looks for the name; the error is no Status,
                # so the handler answers a bare 500 without a reason.
                raise ApiError(500, "", "resourceVersion should not be set on objects to be created")
            if self.store.exists(rtype.key, target.namespace, meta["name"]):
                raise errors.already_exists(rtype.plural, meta["name"], rtype.group)
            self._init_metadata(rtype, obj)
            if "status" in rtype.subresources or rtype.builtin:
                obj.pop("status", None)
            admission.on_create(self, rtype, obj)
            if dry_run:
                meta.pop("resourceVersion", None)
                return Result(self._presented(obj, rtype, target.version), 201, warnings)
            stored = self.store.write(rtype.key, obj)
            if rtype is CRD_TYPE or rtype.key == CRD_TYPE.key:
                stored = self._establish_crd(stored)
            self._reconcile()
            fresh = self.store.get(rtype.key, target.namespace, meta["name"]) or stored
            return Result(self._presented(fresh, rtype, target.version), 201, warnings)

    def replace(
        self, target: Target, body: Any, *, field_validation: str = "Warn", dry_run: bool = False
    ) -> Result:
        rtype = target.rtype
        if target.subresource == "scale":
            return self._replace_scale(target, body)
        obj = self._check_type_fields(target, body)
        with self.store.lock:
            current = self.store.get(rtype.key, target.namespace, target.name)
            if current is None:
                raise errors.not_found(rtype.plural, target.name, rtype.group)
            if not obj["metadata"].get("resourceVersion") and (
                not rtype.builtin or rtype.key == CRD_TYPE.key
            ):
                # Custom resources and CRDs allow no unconditional update (their strategies'
                # AllowUnconditionalUpdate is false): a PUT must say which version it replaces.
                raise errors.invalid(
                    rtype.kind,
                    target.name,
                    [
                        errors.Cause(
                            "FieldValueInvalid",
                            "Invalid value: 0x0: must be specified for an update",
                            "metadata.resourceVersion",
                        )
                    ],
                    group=rtype.group,
                )
            return self._update(target, current, obj, field_validation=field_validation, dry_run=dry_run)

    def patch(
        self,
        target: Target,
        patch_type: str,
        patch: Any,
        *,
        field_validation: str = "Warn",
        dry_run: bool = False,
    ) -> Result:
        rtype = target.rtype
        if patch_type == STRATEGIC_PATCH and not rtype.builtin:
            raise _unsupported_media_type(JSON_PATCH, MERGE_PATCH, APPLY_PATCH)
        if patch_type not in PATCH_TYPES:
            raise _unsupported_media_type(JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH)
        with self.store.lock:
            current = self.store.get(rtype.key, target.namespace, target.name)
            if current is None:
                raise errors.not_found(rtype.plural, target.name, rtype.group)
            base = self._scale_of(current) if target.subresource == "scale" else current
            if patch_type == JSON_PATCH:
                patched = apply_json_patch(base, patch)
            elif patch_type == MERGE_PATCH:
                patched = apply_merge_patch(base, patch)
            else:
                patched = apply_strategic_merge_patch(base, patch, base.get("kind", rtype.kind))
            if target.subresource == "scale":
                return self._replace_scale(target, patched)
            if not isinstance(patched, dict):
                raise errors.bad_request("the patch must produce an object")
            patched_meta = patched.setdefault("metadata", {})
            if patched_meta.get("resourceVersion") != current["metadata"]["resourceVersion"]:
                raise errors.conflict(rtype.plural, target.name, rtype.group)
            patched["apiVersion"] = rtype.api_version(target.version)
            obj = self._check_type_fields(target, patched)
            return self._update(target, current, obj, field_validation=field_validation, dry_run=dry_run)

    def delete(
        self,
        target: Target,
        *,
        propagation: str | None = None,
        preconditions: Obj | None = None,
        dry_run: bool = False,
    ) -> Result:
        rtype = target.rtype
        with self.store.lock:
            current = self.store.get(rtype.key, target.namespace, target.name)
            if current is None:
                raise errors.not_found(rtype.plural, target.name, rtype.group)
            pre = preconditions or {}
            if pre.get("uid") and pre["uid"] != current["metadata"]["uid"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: "
                    f"{current['metadata']['uid']}",
                )
            if (
                pre.get("resourceVersion")
                and pre["resourceVersion"] != current["metadata"]["resourceVersion"]
            ):
                raise errors.conflict(rtype.plural, target.name, rtype.group)
            if dry_run:
                return Result(self._presented(current, rtype, target.version))
            if rtype.key == ("", "namespaces"):
                current.setdefault("status", {})["phase"] = "Terminating"
                current["metadata"]["deletionTimestamp"] = self.now()
                self.store.write(rtype.key, copy.deepcopy(current))
                self.delete_namespace_contents(target.name)
            removed = self.remove_object(rtype, target.namespace, target.name, propagation or "Background")
            self._reconcile()
            if rtype.builtin and rtype.key not in _DELETE_RETURNS_OBJECT:
                return Result(
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Success",
                        "details": {
                            "name": target.name,
                            **({"group": rtype.group} if rtype.group else {}),
                            "kind": rtype.plural,
                            "uid": current["metadata"]["uid"],
                        },
                    }
                )
            return Result(self._presented(removed or current, rtype, target.version))

    def delete_collection(
        self, target: Target, *, label_selector: str = "", field_selector: str = ""
    ) -> Result:
        listed = self.list(target, label_selector=label_selector, field_selector=field_selector).body
        with self.store.lock:
            for item in listed["items"]:
                meta = item["metadata"]
                self.remove_object(target.rtype, meta.get("namespace", ""), meta["name"], "Background")
            self._reconcile()
        for item in listed["items"]:
            self._presented(item, target.rtype, target.version)
        return Result(listed)

    async def watch(
        self,
        target: Target,
        *,
        resource_version: str = "",
        label_selector: str = "",
        field_selector: str = "",
        timeout_seconds: float = 1800.0,
        send_initial_events: bool = False,
    ) -> AsyncIterator[Obj]:
        """Watch events as dicts `{type, object}`; ends after timeout_seconds, like the real one."""
        rtype = target.rtype
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector, rtype.field_selectors)
        loop = asyncio.get_running_loop()
        try:
            since = (
                int(resource_version)
                if resource_version not in ("", "0") and not send_initial_events
                else None
            )
        except ValueError:
            raise errors.bad_request(f'invalid resource version "{resource_version}"') from None
        with self.store.lock:
            sub, backlog = self.store.subscribe(rtype.key, since, loop)
            if since is None:
                current, _ = self.store.list(rtype.key, target.namespace or None)
                backlog = [WatchEvent("ADDED", int(o["metadata"]["resourceVersion"]), o) for o in current]
        self._watches.add(sub)

        def wanted(event: WatchEvent) -> bool:
            meta = event.object["metadata"]
            if target.namespace and meta.get("namespace", "") != target.namespace:
                return False
            if target.name and meta["name"] != target.name:
                return False
            return labels.matches(meta.get("labels") or {}) and fields.matches(event.object)

        deadline = loop.time() + timeout_seconds
        try:
            for event in backlog:
                if wanted(event):
                    yield self._event(event, rtype, target.version)
            if send_initial_events:
                # Watch-list clients (client-go's WatchListClient) wait for this bookmark
                # before they treat the initial state as complete.
                yield {
                    "type": "BOOKMARK",
                    "object": {
                        "kind": rtype.kind,
                        "apiVersion": rtype.api_version(target.version),
                        "metadata": {
                            "resourceVersion": str(self.store.revision),
                            "annotations": {"k8s.io/initial-events-end": "true"},
                        },
                    },
                }
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                try:
                    event = await asyncio.wait_for(sub.queue.get(), remaining)
                except TimeoutError:
                    return
                if event is _CLOSE:
                    return
                if wanted(event):
                    yield self._event(event, rtype, target.version)
        finally:
            self._watches.discard(sub)
            self.store.unsubscribe(sub)

    @property
    def _watches(self) -> set[Subscription]:
        if not hasattr(self, "_open_watches"):
            self._open_watches: set[Subscription] = set()
        return self._open_watches

    def close_watches(self) -> None:
        """Ends every open watch stream, so a server can stop without waiting for them."""
        for sub in list(self._watches):
            sub.push(_CLOSE)

    def _event(self, event: WatchEvent, rtype: ResourceType, version: str) -> Obj:
        obj = self._presented(copy.deepcopy(event.object), rtype, version)
        return {"type": event.type, "object": obj}

    def pod_log(self, namespace: str, name: str, container: str | None) -> str:
        pod = self.store.get(("", "pods"), namespace, name)
        if pod is None:
            raise errors.not_found("pods", name)
        names = [c["name"] for c in dig(pod, "spec", "containers", default=[])]
        if container is None:
            if len(names) != 1:
                raise errors.bad_request(
                    f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
                )
            container = names[0]
        elif container not in names:
            raise errors.bad_request(f"container {container} is not valid for pod {name}")
        stored = self.logs.get((namespace, name)) if container == names[0] else None
        return stored if stored is not None else _simulated_log(pod, container)

    # ----------------------------------------------------------------- internals

    def _generate_name(self, rtype: ResourceType, namespace: str, prefix: str) -> str:
        alphabet = "bcdfghjklmnpqrstvwxz2456789"
        while True:
            name = prefix + "".join(self.random.choice(alphabet) for _ in range(5))
            if not self.store.exists(rtype.key, namespace, name):
                return name

    def _init_metadata(self, rtype: ResourceType, obj: Obj) -> None:
        meta = obj["metadata"]
        for server_set in (
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "generation",
        ):
            meta.pop(server_set, None)
        meta["uid"] = self.new_uid()
        meta["creationTimestamp"] = self.now()
        if _has_generation(rtype):
            meta["generation"] = 1

    def _update(
        self, target: Target, current: Obj, obj: Obj, *, field_validation: str, dry_run: bool
    ) -> Result:
        rtype = target.rtype
        meta = obj["metadata"]
        if meta.get("name") not in (None, target.name):
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                f"({target.name})"
            )
        meta["name"] = target.name
        sent_version = meta.get("resourceVersion")
        if sent_version and sent_version != current["metadata"]["resourceVersion"]:
            raise errors.conflict(rtype.plural, target.name, rtype.group)
        if target.subresource == "status":
            updated = copy.deepcopy(current)
            updated["status"] = obj.get("status")
            obj = updated
        else:
            if "status" in rtype.subresources:
                if "status" in current:
                    obj["status"] = copy.deepcopy(current["status"])
                else:
                    obj.pop("status", None)
            for kept in ("uid", "creationTimestamp", "namespace", "deletionTimestamp"):
                if kept in current["metadata"]:
                    meta[kept] = current["metadata"][kept]
        # Upstream reports the new object's own errors first, then the immutable fields it changed.
        warnings = self._validate(target, obj, field_validation, immutable_causes(current, obj))
        if target.subresource != "status":
            # Counted after pruning and defaulting, which upstream does while decoding: a field the
            # schema drops or a default spelled out is no spec change.
            meta = obj["metadata"]
            meta.pop("generation", None)
            if _has_generation(rtype):
                meta["generation"] = current["metadata"].get("generation", 1)
                if _spec_of(obj) != _spec_of(current):
                    meta["generation"] += 1
        admission.on_update(self, rtype, current, obj)
        if obj == {**current, "apiVersion": obj["apiVersion"]}:
            # A no-op write keeps the resourceVersion and wakes no watcher, as upstream.
            return Result(self._presented(current, rtype, target.version), 200, warnings)
        if dry_run:
            return Result(self._presented(obj, rtype, target.version), 200, warnings)
        stored = self.store.write(rtype.key, obj)
        if rtype.key == CRD_TYPE.key:
            stored = self._establish_crd(stored)
        self._reconcile()
        fresh = self.store.get(rtype.key, target.namespace, target.name) or stored
        return Result(self._presented(fresh, rtype, target.version), 200, warnings)

    def _scale_of(self, obj: Obj) -> Obj:
        selector = dig(obj, "spec", "selector", "matchLabels", default={}) or {}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: obj["metadata"][k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in obj["metadata"]
            },
            "spec": {"replicas": dig(obj, "spec", "replicas", default=1)},
            "status": {
                "replicas": dig(obj, "status", "replicas", default=0),
                "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
            },
        }

    def _replace_scale(self, target: Target, body: Any) -> Result:
        rtype = target.rtype
        replicas = dig(body, "spec", "replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid(
                "Scale",
                target.name,
                [
                    errors.Cause(
                        "FieldValueInvalid",
                        f"Invalid value: {replicas}: must be greater than or equal to 0",
                        "spec.replicas",
                    )
                ],
                group="autoscaling",
            )
        with self.store.lock:
            current = self.store.get(rtype.key, target.namespace, target.name)
            if current is None:
                raise errors.not_found(rtype.plural, target.name, rtype.group)
            sent = dig(body, "metadata", "resourceVersion")
            if sent and sent != current["metadata"]["resourceVersion"]:
                raise errors.conflict(rtype.plural, target.name, rtype.group)
            if current["spec"].get("replicas") != replicas:
                current["spec"]["replicas"] = replicas
                current["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
                self.store.write(rtype.key, current)
                self._reconcile()
            fresh = self.store.get(rtype.key, target.namespace, target.name) or current
            return Result(self._scale_of(fresh))

    def _establish_crd(self, crd: Obj) -> Obj:
        """Serves the kind a CRD defines and marks it Established, as the apiextensions server does."""
        rtype = type_from_crd(crd)
        self.registry.add(rtype)
        names = crd["spec"]["names"]
        status = {
            "acceptedNames": {k: v for k, v in names.items()},
            "storedVersions": [v["name"] for v in crd["spec"]["versions"] if v.get("storage")],
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                    "lastTransitionTime": self.now(),
                },
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                    "lastTransitionTime": self.now(),
                },
            ],
        }
        if crd.get("status") == status:
            return crd
        crd["status"] = status
        return self.store.write(CRD_TYPE.key, crd)

    def delete_namespace_contents(self, namespace: str) -> None:
        for key, name in self.store.keys_in_namespace(namespace):
            rtype = self.registry.get(*key)
            if rtype is not None:
                self.remove_object(rtype, namespace, name, "Background")
            else:
                self.store.remove(key, namespace, name)

    def remove_object(self, rtype: ResourceType, namespace: str, name: str, propagation: str) -> Obj | None:
        """Deletes an object and handles its dependents the way the garbage collector would."""
        with self.store.lock:
            removed = self.store.remove(rtype.key, namespace, name)
            if removed is None:
                return None
            if rtype.key == CRD_TYPE.key:
                defined = type_from_crd(removed)
                for item in self.store.list(defined.key)[0]:
                    meta = item["metadata"]
                    self.store.remove(defined.key, meta.get("namespace", ""), meta["name"])
                self.registry.remove(defined.key)
                self.store.drop_type(defined.key)
            if rtype.key == ("", "pods"):
                self.logs.pop((namespace, name), None)
            self.controller.orphan_or_collect(removed, propagation)
            return removed


# Built-in kinds whose strategies count spec changes in metadata.generation (pods since
# PodObservedGenerationTracking, beta in 1.34); ConfigMaps, Services, Namespaces and the like carry none.
_GENERATION_KINDS = {
    ("", "pods"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("batch", "jobs"),
    CRD_TYPE.key,
}


def _has_generation(rtype: ResourceType) -> bool:
    return not rtype.builtin or rtype.key in _GENERATION_KINDS


def _simulated_log(pod: Obj, container: str) -> str:
    """A few lines for a container that runs nothing: `kubectl logs` that prints nothing and exits 0
    reads as a silent app, so the lines say plainly that the playground runs no processes."""
    image = next(
        (c.get("image", "") for c in dig(pod, "spec", "containers", default=[]) if c["name"] == container), ""
    )
    started = dig(pod, "status", "startTime") or dig(pod, "metadata", "creationTimestamp") or ""
    if dig(pod, "status", "phase") not in ("Running", "Succeeded", "Failed"):
        return ""
    return (
        f"{started} playground: container {container} ({image}) started\n"
        f"{started} playground: this is a simulated pod; the playground runs no processes, so the "
        "container writes no logs of its own\n"
    )


def _spec_of(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _unsupported_media_type(*accepted: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted),
    )
