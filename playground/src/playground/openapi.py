"""The `/openapi/v2` and `/openapi/v3` documents: what `kubectl apply` validates against and
`kubectl explain` reads.

Built-in kinds come from kubernetes-validate's schemas of the release the playground claims to be
(a JSON-Schema rendering of upstream's OpenAPI definitions, descriptions included), turned back into
OpenAPI; custom kinds from their CRD's `openAPIV3Schema`, named and wrapped as the apiextensions
server does. Every kind also gets a PATCH path that lists `fieldValidation`: kubectl looks for that
parameter to decide whether the server validates fields itself (it does) or kubectl must.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from importlib import resources
from typing import Any

from playground.meta import Obj
from playground.resources import ResourceType

# The kubernetes-validate schema set matching SERVER_VERSION's minor.
SCHEMA_RELEASE = "v1.37.0-local"
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_WRITE_PARAMETERS = ("dryRun", "fieldManager", "fieldValidation")


@functools.cache
def _builtin_definitions() -> dict[str, Obj]:
    root = resources.files("kubernetes_validate") / "kubernetes-json-schema" / SCHEMA_RELEASE
    loaded: dict[str, Obj] = json.loads((root / "_definitions.json").read_text())["$defs"]
    return loaded


@functools.cache
def _builtin_by_gvk() -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in _builtin_definitions().items():
        gvks = schema.get("x-kubernetes-group-version-kind") or []
        # DeleteOptions, WatchEvent… carry every group's GVK; they are no group's own kind.
        if len(gvks) == 1:
            g = gvks[0]
            index[(g["group"], g["version"], g["kind"])] = name
    return index


def _to_openapi(node: Any, ref_prefix: str, v3: bool) -> Any:
    """JSON Schema 2020-12 (nullable types as lists, `$defs` refs) back to OpenAPI's dialect."""
    if isinstance(node, list):
        return [_to_openapi(n, ref_prefix, v3) for n in node]
    if not isinstance(node, dict):
        return node
    out: Obj = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            out[key] = ref_prefix + value.rsplit("/", 1)[-1]
        elif key == "type" and isinstance(value, list):
            kinds = [t for t in value if t != "null"]
            out[key] = kinds[0] if len(kinds) == 1 else kinds
        elif key == "oneOf" and not v3:
            # OpenAPI v2 has no oneOf: upstream's v2 spells IntOrString and Quantity as strings.
            out["type"] = "string"
        elif key in ("properties", "patternProperties", "$defs"):
            out[key] = {k: _to_openapi(v, ref_prefix, v3) for k, v in value.items()}
        else:
            out[key] = _to_openapi(value, ref_prefix, v3)
    if "$ref" in out and len(out) > 1:
        # OpenAPI 3.0 ignores siblings of $ref; upstream wraps such references in allOf.
        ref = out.pop("$ref")
        out["allOf"] = [{"$ref": ref}]
    return out


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value.rsplit("/", 1)[-1])
            else:
                _refs(value, found)
    elif isinstance(node, list):
        for item in node:
            _refs(item, found)


def _closure(names: set[str]) -> set[str]:
    definitions = _builtin_definitions()
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen or name not in definitions:
            continue
        seen.add(name)
        found: set[str] = set()
        _refs(definitions[name], found)
        todo += found - seen
    return seen


def definition_name(rtype: ResourceType, version: str) -> str:
    """A kind's schema name: upstream's for built-ins, the reversed group for custom kinds."""
    if rtype.builtin:
        name = _builtin_by_gvk().get((rtype.group, version, rtype.kind))
        if name is not None:
            return name
    reversed_group = ".".join(reversed(rtype.group.split("."))) if rtype.group else "io.k8s.api.core"
    return f"{reversed_group}.{version}.{rtype.kind}"


def _gvk(rtype: ResourceType, version: str) -> Obj:
    return {"group": rtype.group, "version": version, "kind": rtype.kind}


def _custom_schema(rtype: ResourceType, version: str, ref_prefix: str) -> Obj:
    """As apiextensions-apiserver publishes a CRD's schema: apiVersion, kind and metadata added."""
    schema = copy.deepcopy(rtype.schemas.get(version) or {"type": "object"})
    properties = schema.setdefault("properties", {})
    # Status carries the standard descriptions of apiVersion and kind (TypeMeta has no schema).
    base = _builtin_definitions()["io.k8s.apimachinery.pkg.apis.meta.v1.Status"]["properties"]
    properties["apiVersion"] = {"type": "string", "description": base["apiVersion"]["description"]}
    properties["kind"] = {"type": "string", "description": base["kind"]["description"]}
    properties["metadata"] = {
        "allOf": [{"$ref": ref_prefix + _OBJECT_META}],
        "description": "Standard object's metadata. More info: "
        "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    }
    schema["x-kubernetes-group-version-kind"] = [_gvk(rtype, version)]
    return schema


def _path(rtype: ResourceType, version: str) -> str:
    prefix = f"/apis/{rtype.group}/{version}" if rtype.group else "/api/v1"
    scope = "/namespaces/{namespace}" if rtype.namespaced else ""
    return f"{prefix}{scope}/{rtype.plural}/{{name}}"


def _patch_operation(rtype: ResourceType, version: str, v3: bool) -> Obj:
    parameters: list[Obj] = []
    for name in _WRITE_PARAMETERS:
        param: Obj = {"name": name, "in": "query", "uniqueItems": True}
        if v3:
            param["schema"] = {"type": "string", "uniqueItems": True}
        else:
            param["type"] = "string"
        parameters.append(param)
    return {
        "operationId": f"patch{rtype.kind}",
        "parameters": parameters,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": _gvk(rtype, version),
    }


def _schemas(types: list[tuple[ResourceType, str]], ref_prefix: str, v3: bool) -> dict[str, Obj]:
    definitions = _builtin_definitions()
    builtin = {definition_name(t, v) for t, v in types if t.builtin}
    if any(not t.builtin for t, _ in types):
        builtin.add(_OBJECT_META)
    schemas = {name: _to_openapi(definitions[name], ref_prefix, v3) for name in sorted(_closure(builtin))}
    for rtype, version in types:
        if not rtype.builtin:
            schemas[definition_name(rtype, version)] = _custom_schema(rtype, version, ref_prefix)
    return schemas


def _served(types: list[ResourceType]) -> list[tuple[ResourceType, str]]:
    served = []
    for rtype in sorted(types, key=lambda t: (t.group, t.plural)):
        for version in rtype.versions:
            if rtype.builtin and (rtype.group, version, rtype.kind) not in _builtin_by_gvk():
                continue
            served.append((rtype, version))
    return served


def v2_document(types: list[ResourceType]) -> Obj:
    served = _served(types)
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.37.0+playground"},
        "paths": {_path(t, v): {"patch": _patch_operation(t, v, v3=False)} for t, v in served},
        "definitions": _schemas(served, "#/definitions/", v3=False),
    }


def group_versions(types: list[ResourceType]) -> list[str]:
    """The `/openapi/v3` entries: `api/v1`, `apis/<group>/<version>`."""
    found = {("api/v1" if not t.group else f"apis/{t.group}/{v}") for t, v in _served(types)}
    return sorted(found)


def v3_document(types: list[ResourceType], group_version: str) -> Obj | None:
    served = [
        (t, v)
        for t, v in _served(types)
        if ("api/v1" if not t.group else f"apis/{t.group}/{v}") == group_version
    ]
    if not served:
        return None
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.37.0+playground"},
        "paths": {_path(t, v): {"patch": _patch_operation(t, v, v3=True)} for t, v in served},
        "components": {"schemas": _schemas(served, "#/components/schemas/", v3=True)},
    }


def digest(document: Obj) -> str:
    """The `hash` kubectl caches a group-version's document under, as upstream: its SHA-512."""
    return hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest().upper()
