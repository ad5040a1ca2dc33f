"""The HTTP face of the playground: Kubernetes REST paths, discovery and the test-hook endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from playground import istio_sim, openapi, protobuf
from playground.api import Target
from playground.apiserver import APPLY_PATCH, ApiServer, Result
from playground.errors import ApiError
from playground.hooks import Grant, Hooks, RequestRecord, status_body
from playground.rbac import SSAR_PATH, Authorizer, service_account_user
from playground.resources import ResourceType
from playground.tables import to_table
from playground.traffic import Simulator

SERVER_VERSION = {
    "major": "1",
    # The minor of the kubectl and client this project pins: kubectl warns on every `version`
    # when the server is more than one minor away.
    "minor": "37",
    "gitVersion": "v1.37.0+playground",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.24.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_ENDPOINTS_DEPRECATED = b'299 - "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"'
_UNAUTHENTICATED = ("/healthz", "/readyz", "/livez", "/_playground")
_WRITE_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def _json(body: Any, code: int = 200, warnings: list[str] | None = None) -> Response:
    response = Response(
        json.dumps(body, separators=(",", ":")),
        status_code=code,
        media_type="application/json",
    )
    for warning in warnings or []:
        # One header per warning, the text quoted as Go's strconv.Quote does (upstream's
        # NewWarningHeader): clients split and unquote them, so inner quotes must be escaped.
        quoted = json.dumps(warning, ensure_ascii=False)
        response.raw_headers.append((b"warning", f"299 - {quoted}".encode()))
    return response


def _error(err: ApiError) -> Response:
    return _json(err.status(), err.code)


def _resource_entry(rtype: ResourceType, sub: str = "") -> dict[str, Any]:
    name = f"{rtype.plural}/{sub}" if sub else rtype.plural
    entry: dict[str, Any] = {
        "name": name,
        "singularName": "" if sub else rtype.singular,
        "namespaced": rtype.namespaced,
        "kind": "Scale" if sub == "scale" else rtype.kind,
        "verbs": ["get", "patch", "update"] if sub and sub != "log" else (["get"] if sub else rtype.verbs()),
    }
    if sub == "scale":
        entry["group"] = "autoscaling"
        entry["version"] = "v1"
    if not sub:
        if rtype.short_names:
            entry["shortNames"] = list(rtype.short_names)
        if rtype.categories:
            entry["categories"] = list(rtype.categories)
        entry["storageVersionHash"] = ""
    return entry


class PlaygroundApp:
    def __init__(self, api: ApiServer, hooks: Hooks) -> None:
        self.api = api
        self.hooks = hooks
        self._stopping = asyncio.Event()
        # Istio's standard metrics of the simulated emojivoto mesh, for a Prometheus to scrape.
        self.traffic = Simulator(api)
        self.app = Starlette(
            routes=[
                Route("/_playground/traffic/metrics", self.metrics, methods=["GET"]),
                Route("/_playground/{hook:path}", self.hook, methods=["GET", "POST", "DELETE"]),
                Route("/{path:path}", self.dispatch, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            ]
        )

    # -------------------------------------------------------------- entry

    async def dispatch(self, request: Request) -> Response:
        path = "/" + request.path_params["path"]
        response = await self._guarded(request, path)
        body_text = getattr(request.state, "body", None)
        self.hooks.record(
            RequestRecord(
                request.method,
                path,
                request.url.query,
                request.headers.get("content-type", ""),
                response.status_code,
                body_text,
            )
        )
        return response

    async def metrics(self, request: Request) -> Response:
        return PlainTextResponse(self.traffic.exposition(), media_type="text/plain; version=0.0.4")

    def shutdown(self) -> None:
        """On the server's loop, as it stops: end watches, and hung or delayed requests at once."""
        self._stopping.set()
        self.api.close_watches()

    async def _pause(self, seconds: float) -> bool:
        """Sleeps unless the server stops first (then False): uvicorn would otherwise cancel the
        request at its graceful-shutdown timeout and log the CancelledError as an app failure."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return not self._stopping.is_set()

    async def _guarded(self, request: Request, path: str) -> Response:
        if self.hooks.latency_seconds and not await self._pause(self.hooks.latency_seconds):
            return _json(status_body(503, "the playground is shutting down"), 503)
        fault = self.hooks.take_fault(request.method, path)
        if fault is not None:
            # Read the body first: a client that gives up while we hang must not leave a
            # half-read request behind (Starlette would raise ClientDisconnect later).
            await request.body()
            if fault.hang_seconds and not await self._pause(fault.hang_seconds):
                return _json(status_body(503, "the playground is shutting down"), 503)
            if fault.code:
                return _json(
                    status_body(fault.code, f"the playground was asked to fail this request ({fault.code})"),
                    fault.code,
                )
        grant = None
        if not path.startswith(_UNAUTHENTICATED):
            grant, denied = self._authenticate(request, path)
            if denied is not None:
                return denied
        try:
            if path == SSAR_PATH and request.method == "POST":
                return await self._access_review(request, grant)
            return await self._route(request, path)
        except ApiError as err:
            return _error(err)

    def _authenticate(self, request: Request, path: str) -> tuple[Grant | None, Response | None]:
        tokens = self.hooks.tokens
        if tokens is None:
            return None, None
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        grant = tokens.get(token)
        if grant is None:
            return None, _json(status_body(401, "Unauthorized"), 401)
        if grant.read_only and request.method in _WRITE_VERBS:
            return grant, _error(_forbidden(grant.user, request.method, path))
        authorizer = self.hooks.authorizer
        if authorizer is not None:
            watch = request.query_params.get("watch") in ("true", "1")
            denied = authorizer.check(grant.user, grant.groups, request.method, path, watch)
            if denied is not None:
                return grant, _error(denied)
        return grant, None

    async def _access_review(self, request: Request, grant: Grant | None) -> Response:
        """`kubectl auth can-i`: without RBAC on, everything is allowed (as AlwaysAllow)."""
        body = await self._body(request)
        authorizer = self.hooks.authorizer
        if authorizer is None or grant is None:
            review = {**body, "status": {"allowed": True}}
        else:
            review = authorizer.review(grant.user, grant.groups, body)
        return _json(review, 201)

    # -------------------------------------------------------------- routing

    async def _route(self, request: Request, path: str) -> Response:
        parts = [p for p in path.split("/") if p]
        if not parts:
            return _json({"paths": ["/api", "/api/v1", "/apis", "/healthz", "/version"]})
        head = parts[0]
        if head in ("healthz", "readyz", "livez"):
            return PlainTextResponse("ok")
        if head == "version":
            return _json(SERVER_VERSION)
        if head == "openapi":
            return self._openapi(parts[1:])
        if head == "api":
            if len(parts) == 1:
                host = request.url.netloc
                return _json(
                    {
                        "kind": "APIVersions",
                        "versions": ["v1"],
                        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
                    }
                )
            if parts[1] != "v1":
                raise _not_found()
            if len(parts) == 2:
                return _json(self._resource_list("", "v1"))
            return await self._resource(request, "", "v1", parts[2:])
        if head == "apis":
            if len(parts) == 1:
                return _json(self._group_list())
            group = parts[1]
            versions = self.api.registry.groups().get(group)
            if not versions or group == "":
                raise _not_found()
            if len(parts) == 2:
                return _json({"kind": "APIGroup", "apiVersion": "v1", **self._group(group, versions)})
            if parts[2] not in versions:
                raise _not_found()
            if len(parts) == 3:
                return _json(self._resource_list(group, parts[2]))
            return await self._resource(request, group, parts[2], parts[3:])
        raise _not_found()

    def _openapi(self, parts: list[str]) -> Response:
        types = self.api.registry.all()
        if parts == ["v2"]:
            return _json(openapi.v2_document(types))
        if parts[:1] != ["v3"]:
            raise _not_found()
        if len(parts) == 1:
            paths = {}
            for group_version in openapi.group_versions(types):
                document = openapi.v3_document(types, group_version)
                assert document is not None
                url = f"/openapi/v3/{group_version}?hash={openapi.digest(document)}"
                paths[group_version] = {"serverRelativeURL": url}
            return _json({"paths": paths})
        document = openapi.v3_document(types, "/".join(parts[1:]))
        if document is None:
            raise _not_found()
        return _json(document)

    def _group(self, group: str, versions: list[str]) -> dict[str, Any]:
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": entries, "preferredVersion": entries[0]}

    def _group_list(self) -> dict[str, Any]:
        groups = [self._group(g, vs) for g, vs in sorted(self.api.registry.groups().items()) if g]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources = []
        for rtype in sorted(self.api.registry.all(), key=lambda t: t.plural):
            if rtype.group != group or version not in rtype.versions:
                continue
            resources.append(_resource_entry(rtype))
            resources += [_resource_entry(rtype, sub) for sub in sorted(rtype.subresources)]
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    async def _resource(self, request: Request, group: str, version: str, rest: list[str]) -> Response:
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise _not_found()
        plural, name, sub = ([*rest, "", ""])[:3]
        rtype = self.api.registry.resolve(group, version, plural)
        if namespace and not rtype.namespaced:
            raise _not_found()
        if sub and sub not in rtype.subresources:
            raise _not_found()
        if rtype.namespaced and not namespace and request.method not in ("GET",):
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        target = Target(rtype, version, namespace, name, sub)
        response = await self._serve(request, target)
        if rtype.key == ("", "endpoints"):
            # Every v1 Endpoints request gets this warning since 1.33; kubectl prints it.
            response.raw_headers.append((b"warning", _ENDPOINTS_DEPRECATED))
        return response

    async def _serve(self, request: Request, target: Target) -> Response:
        namespace, name, sub = target.namespace, target.name, target.subresource
        query = request.query_params
        method = request.method
        dry_run = query.get("dryRun") == "All"
        field_validation = query.get("fieldValidation", "Warn")
        if field_validation not in ("Strict", "Warn", "Ignore"):
            raise ApiError(400, "BadRequest", f"fieldValidation parameter unsupported: {field_validation}")
        if method == "GET":
            if sub == "log":
                text = self.api.pod_log(namespace, name, query.get("container"))
                return PlainTextResponse(text)
            if query.get("watch") in ("true", "1"):
                return self._watch(request, target)
            if name:
                return self._render(request, target, self.api.get(target))
            limit = query.get("limit", "0")
            result = self.api.list(
                target,
                label_selector=query.get("labelSelector", ""),
                field_selector=query.get("fieldSelector", ""),
                limit=int(limit) if limit.isdigit() else 0,
                continue_token=query.get("continue", ""),
            )
            return self._render(request, target, result)
        if method == "POST":
            if name:
                raise ApiError(
                    405,
                    "MethodNotAllowed",
                    "the server does not allow this method on the requested resource",
                )
            body = await self._body(request)
            return self._result(
                self.api.create(target, body, field_validation=field_validation, dry_run=dry_run)
            )
        if not name and method != "DELETE":
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        if method == "PUT":
            body = await self._body(request)
            return self._result(
                self.api.replace(target, body, field_validation=field_validation, dry_run=dry_run)
            )
        if method == "PATCH":
            content_type = request.headers.get("content-type", "").split(";")[0].strip()
            if content_type == APPLY_PATCH:
                body = await self._body(request)
            else:
                body = await self._body(request, content_type="application/json")
            return self._result(
                self.api.patch(target, content_type, body, field_validation=field_validation, dry_run=dry_run)
            )
        # DELETE
        options = await self._body(request, allow_empty=True) or {}
        propagation = query.get("propagationPolicy") or options.get("propagationPolicy")
        if not name:
            return self._result(
                self.api.delete_collection(
                    target,
                    label_selector=query.get("labelSelector", ""),
                    field_selector=query.get("fieldSelector", ""),
                )
            )
        return self._result(
            self.api.delete(
                target,
                propagation=propagation,
                preconditions=options.get("preconditions"),
                dry_run=dry_run or options.get("dryRun") == ["All"],
            )
        )

    async def _body(
        self, request: Request, *, content_type: str | None = None, allow_empty: bool = False
    ) -> Any:
        raw = await request.body()
        text = raw.decode("utf-8", errors="replace")
        request.state.body = text
        if not raw.strip():
            if allow_empty:
                return None
            raise ApiError(400, "BadRequest", "the request body is empty")
        kind = content_type or request.headers.get("content-type", "application/json")
        if protobuf.MEDIA_TYPE in kind:
            decoded = protobuf.decode(raw)
            # The request log shows what was sent as JSON: the raw bytes would read as noise.
            request.state.body = json.dumps(decoded)
            return decoded
        if "cbor" in kind or "protobuf" in kind:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                # CBOR is alpha upstream and off by default; clients fall back to JSON on this 415.
                "the body of the request was in an unknown format - accepted media types include: "
                f"application/json, application/yaml, {protobuf.MEDIA_TYPE}",
            )
        try:
            if "yaml" in kind:
                return yaml.safe_load(text)
            return json.loads(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise ApiError(
                400,
                "BadRequest",
                f"the request body is not valid {'YAML' if 'yaml' in kind else 'JSON'}: {exc}",
            ) from None

    def _result(self, result: Result) -> Response:
        return _json(result.body, result.code, result.warnings)

    def _render(self, request: Request, target: Target, result: Result) -> Response:
        accept = request.headers.get("accept", "")
        if "as=Table" in accept and target.subresource == "":
            body = result.body
            items = body.get("items", [body])
            meta = (
                body.get("metadata", {})
                if "items" in body
                else {"resourceVersion": body["metadata"].get("resourceVersion")}
            )
            if "items" in body:
                # The items of built-in lists come without kind; tables carry full objects.
                for item in items:
                    item.setdefault("kind", target.rtype.kind)
                    item.setdefault("apiVersion", target.rtype.api_version(target.version))
            table = to_table(
                target.rtype,
                target.version,
                items,
                meta,
                request.query_params.get("includeObject", "Metadata"),
            )
            return _json(table, result.code)
        return self._result(result)

    def _watch(self, request: Request, target: Target) -> Response:
        query = request.query_params
        timeout = query.get("timeoutSeconds", "")
        events = self.api.watch(
            target,
            resource_version=query.get("resourceVersion", ""),
            label_selector=query.get("labelSelector", ""),
            field_selector=query.get("fieldSelector", ""),
            timeout_seconds=float(timeout) if timeout.isdigit() else 1800.0,
            send_initial_events=query.get("sendInitialEvents") == "true",
        )

        # `kubectl get -w` asks for Tables here too: each event then carries a one-row Table.
        as_table = "as=Table" in request.headers.get("accept", "")
        include_object = query.get("includeObject", "Metadata")

        async def stream() -> AsyncIterator[bytes]:
            try:
                async for event in events:
                    if as_table and event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        obj = event["object"]
                        meta = {"resourceVersion": obj["metadata"].get("resourceVersion")}
                        table = to_table(target.rtype, target.version, [obj], meta, include_object)
                        event = {"type": event["type"], "object": table}
                    yield (json.dumps(event, separators=(",", ":")) + "\n").encode()
            except ApiError as err:
                # A watch that cannot start (410 Gone) still answers 200, then an ERROR event.
                yield (json.dumps({"type": "ERROR", "object": err.status()}) + "\n").encode()

        return StreamingResponse(stream(), media_type="application/json")

    # -------------------------------------------------------------- hooks

    async def hook(self, request: Request) -> Response:
        name = request.path_params["hook"]
        body: dict[str, Any] = {}
        if request.method == "POST":
            raw = await request.body()
            body = json.loads(raw) if raw.strip() else {}
        if name == "auth" and request.method == "POST":
            tokens = body.get("tokens")
            self.hooks.require_tokens(None if tokens is None else {t: _grant(g) for t, g in tokens.items()})
            return _json({"ok": True})
        if name == "rbac" and request.method == "POST":
            self.hooks.authorizer = Authorizer(self.api.store) if body.get("enabled", True) else None
            return _json({"ok": True})
        if name == "faults":
            if request.method == "DELETE":
                self.hooks.clear_faults()
                return _json({"ok": True})
            if "hang" in body:
                self.hooks.hang_next(
                    body["path"],
                    int(body.get("count", 1)),
                    seconds=float(body["hang"]),
                    method=body.get("method"),
                )
            else:
                self.hooks.fail_next(
                    body["path"],
                    int(body.get("count", 1)),
                    code=int(body.get("code", 500)),
                    method=body.get("method"),
                )
            return _json({"ok": True})
        if name == "latency" and request.method == "POST":
            self.hooks.latency_seconds = float(body.get("seconds", 0))
            return _json({"ok": True})
        if name == "requests":
            if request.method == "DELETE":
                self.hooks.requests.clear()
                return _json({"ok": True})
            return _json(
                [
                    {
                        "method": r.method,
                        "path": r.path,
                        "query": r.query,
                        "contentType": r.content_type,
                        "status": r.status,
                        "body": r.body,
                    }
                    for r in list(self.hooks.requests)
                ]
            )
        if name == "jobs/fail" and request.method == "POST":
            self.api.controller.failing_jobs[(body["namespace"], body["name"])] = body.get(
                "log", "Error: the playground was asked to fail this job\n"
            )
            return _json({"ok": True})
        if name == "istioctl" and request.method == "POST":
            with self.api.store.lock:
                code, output = istio_sim.run_istioctl(self.api, [str(a) for a in body.get("args", [])])
            return _json({"code": code, "output": output})
        return _json(status_body(404, f"no playground hook {name!r}"), 404)


def _grant(spec: dict[str, Any]) -> Grant:
    """A token's subject from the auth hook: a user and groups, or {"serviceAccount": "ns/name"}."""
    if "serviceAccount" in spec:
        namespace, _, name = str(spec["serviceAccount"]).partition("/")
        user, groups = service_account_user(namespace, name)
        return Grant(user, bool(spec.get("readOnly")), groups)
    return Grant(spec.get("user", "test"), bool(spec.get("readOnly")), tuple(spec.get("groups") or ()))


def _forbidden(user: str, method: str, path: str) -> ApiError:
    """The 403 an RBAC denial gives: which user, verb, resource, group and namespace."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"]:
        group, rest = (parts[1] if len(parts) > 1 else ""), parts[3:]
    else:
        rest = []
    verb = _WRITE_VERBS[method]
    if not rest:
        return ApiError(403, "Forbidden", f'forbidden: User "{user}" cannot {method.lower()} path "{path}"')
    namespace = ""
    # As upstream's RequestInfo: /namespaces/{ns}/{resource}/… is namespaced, and
    # /namespaces/{name} is the namespace itself, in its own namespace.
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    if len(rest) > 2:
        resource = f"{resource}/{rest[2]}"
    if verb == "delete" and not name:
        verb = "deletecollection"
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    reason = f'User "{user}" cannot {verb} resource "{resource}" in API group "{group}" {where}'
    qualified = f"{rest[0]}.{group}" if group else rest[0]
    subject = f'{qualified} "{name}"' if name else qualified
    return ApiError(
        403,
        "Forbidden",
        f"{subject} is forbidden: {reason}",
        name=name or None,
        group=group or None,
        kind=rest[0],
    )


def _not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")
