"""The service: a FastAPI app with Slack's endpoint, health, metrics and the /api/v1 JSON API.

``create_app`` only assembles; clients are built in the lifespan and kept on ``app.state``, so
tests pass their own pipeline (a playground cluster, a temporary store) and Slack client (a local
fake) instead of patching anything:

    app = create_app(settings, pipeline=pipeline)
    with TestClient(app) as client:   # the lifespan runs, and work after an ack with it
        client.post("/slack/events", ...)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.adapter.starlette.async_handler import to_starlette_response
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot import api
from bot.api import ApiParts
from bot.authz import RoleAuthorizer, ScheduleOwners
from bot.compose import build_pipeline
from bot.confirm import PendingConfirmations, needs_confirmation
from bot.leadership import LeaderWatch
from bot.lifecycle import Lifecycle, LogNotifier, Notifier
from bot.metrics import CONTENT_TYPE, Metrics
from bot.pipeline import Pipeline
from bot.slack import gate, messages
from bot.slack.bolt import build_bolt_app
from bot.slack.client import async_web_client, sync_web_client
from bot.slack.front import SlackFront
from bot.slack.groups import UserGroups
from bot.slack.threads import SlackNotifier, Threads
from bot.work import Lanes
from core.settings import Settings
from core.store import Store, StoreError, list_active
from core.store.migrate import current_revision, head_revision
from mesh.errors import MeshError
from mesh.kube import unreachable

log = logging.getLogger(__name__)

# How often unanswered confirmation questions are looked for, to withdraw (audit) them. Every
# replica sweeps: each expired question is taken out of the store by exactly one of them first.
SWEEP_SECONDS = 15.0
# On shutdown, commands already acknowledged get this long to finish and report.
DRAIN_SECONDS = 30.0
READY_TIMEOUT_SECONDS = 3.0


class ConfigurationError(Exception):
    """The settings cannot start the service; the message says which one to fix."""


@dataclass
class AppParts:
    """What the app's own routes and background tasks use, kept on ``app.state.parts``."""

    settings: Settings
    pipeline: Pipeline  # the base pipeline (metrics on, no roles, no confirm step)
    metrics: Metrics
    confirmations: PendingConfirmations
    front: SlackFront | None = None
    slack_handler: Any = None  # AsyncSlackRequestHandler in HTTP mode
    # Slack's roles, with its user groups once the Slack client is there.
    roles: RoleAuthorizer = field(default_factory=RoleAuthorizer)
    slack_signing_secret: str | None = None  # HTTP mode: checked before Bolt parses anything


def create_app(
    settings: Settings | None = None,
    *,
    pipeline: Pipeline | None = None,
    slack_client: AsyncWebClient | None = None,
    socket_mode: bool = False,
    run_lifecycle: bool = False,
    lanes: Lanes | None = None,
) -> FastAPI:
    """The meshbot service. Without a pipeline one is built from ``settings`` at start-up (and
    closed at shutdown); without a Slack client one is built from the Slack settings, if any.
    With ``run_lifecycle`` the process also takes part in the leader election and, as leader,
    ends experiments on time and runs schedules (``meshbot serve`` turns it on by setting).
    ``lanes``: the Slack front's bounded thread pools (bot.work); tests pass small ones."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        base: Pipeline = (
            pipeline if pipeline is not None else await asyncio.to_thread(build_pipeline, settings)
        )
        async with contextlib.AsyncExitStack() as stack:
            if pipeline is None:
                stack.callback(base.store.dispose)
                stack.callback(base.kube.close)
            parts = _parts(settings, base)
            client = slack_client or _slack_client(settings)
            if client is not None:
                await stack.enter_async_context(_slack(app, parts, settings, client, socket_mode, lanes))
            app.state.parts = parts
            app.state.api = ApiParts(settings, replace(parts.pipeline, confirm=needs_confirmation))
            sweeper = asyncio.create_task(_sweep(parts))
            stack.callback(sweeper.cancel)
            if run_lifecycle:
                lifecycle = _lifecycle(app, parts, settings)
                if isinstance(parts.pipeline.leadership, LeaderWatch):
                    parts.pipeline.leadership.local = lifecycle
                await asyncio.to_thread(lifecycle.start)
                # Stepping down releases the Lease, so another replica takes over at once.
                stack.push_async_callback(asyncio.to_thread, lifecycle.stop)
                app.state.lifecycle = lifecycle
            yield

    # No /api/docs, /api/openapi.json or /redoc: they were served without the API token and told a
    # stranger every route and field; the API is described in docs/output.md instead.
    app = FastAPI(title="meshbot", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(api.router)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_api_route("/healthz", healthz, methods=["GET"])
    app.add_api_route("/readyz", readyz, methods=["GET"])
    app.add_api_route("/metrics", metrics, methods=["GET"])
    app.add_api_route("/slack/events", slack_events, methods=["POST"])
    return app


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, without the ``input`` it echoes: a 1 MB command came back whole, and a body
    may carry what should not be repeated into a proxy's log."""
    assert isinstance(exc, RequestValidationError)
    detail = [{k: v for k, v in error.items() if k not in ("input", "ctx", "url")} for error in exc.errors()]
    return JSONResponse({"detail": jsonable_encoder(detail)}, status_code=422)


def _parts(settings: Settings, base: Pipeline) -> AppParts:
    metrics = Metrics()
    metrics.count_active_experiments(lambda: _count_active(base.store))
    return AppParts(
        settings=settings,
        # Every pipeline below is a copy of this one, so every transport is counted alike.
        pipeline=replace(base, metrics=metrics),
        metrics=metrics,
        confirmations=PendingConfirmations(base.store, base.policy.confirm.expires_after),
    )


def _slack_client(settings: Settings) -> AsyncWebClient | None:
    if settings.slack_bot_token is None:
        log.warning("SLACK_BOT_TOKEN is not set: the Slack front is off, /slack/events answers 404")
        return None
    return async_web_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)


def _lifecycle(app: FastAPI, parts: AppParts, settings: Settings) -> Lifecycle:
    """Expiry, reaper and schedules report into Slack threads when Slack is configured; a
    scheduled run is authorized as its owner, with the same roles as a typed command."""
    threads = getattr(app.state, "threads", None)
    notifier: Notifier = SlackNotifier(threads) if threads is not None else LogNotifier()
    pipeline = parts.pipeline
    return Lifecycle(
        pipeline,
        pipeline.kube,
        pipeline.store,
        notifier,
        settings,
        authorize_runs=ScheduleOwners(parts.roles),
    )


@contextlib.asynccontextmanager
async def _slack(
    app: FastAPI,
    parts: AppParts,
    settings: Settings,
    client: AsyncWebClient,
    socket_mode: bool,
    lanes: Lanes | None,
) -> AsyncIterator[None]:
    base = parts.pipeline
    groups = UserGroups(
        sync_web_client(client.token, client.base_url), ttl_seconds=settings.usergroup_cache_seconds
    )
    metrics = parts.metrics
    threads = Threads(
        client,
        base.store,
        on_failure=lambda method: metrics.slack_api_failures.labels(method).inc(),
        loop=asyncio.get_running_loop(),
    )
    parts.roles = RoleAuthorizer(groups)
    front = SlackFront(
        pipeline=replace(base, authorize=parts.roles, confirm=needs_confirmation),
        client=client,
        threads=threads,
        confirmations=parts.confirmations,
        metrics=metrics,
        lanes=lanes,
        card_tail_seconds=settings.card_tail_seconds,
    )
    secret = settings.slack_signing_secret
    if not socket_mode and secret is None:
        raise ConfigurationError("SLACK_SIGNING_SECRET is not set: HTTP mode cannot verify Slack's requests")
    bolt = build_bolt_app(
        client=client,
        signing_secret=None if socket_mode else secret.get_secret_value() if secret else None,
        front=front,
        metrics=metrics,
    )
    parts.front = front
    stop_following = base.events.subscribe(front.follow)
    app.state.threads = threads
    app.state.bolt = bolt
    socket = None
    if socket_mode:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        if settings.slack_app_token is None:
            raise ConfigurationError("SLACK_APP_TOKEN is not set: Socket Mode needs an xapp- token")
        socket = AsyncSocketModeHandler(bolt, settings.slack_app_token.get_secret_value(), web_client=client)
        await socket.connect_async()
        log.info("connected to Slack over Socket Mode")
    else:
        parts.slack_handler = AsyncSlackRequestHandler(bolt)
        assert secret is not None  # refused above in HTTP mode
        parts.slack_signing_secret = secret.get_secret_value()
    try:
        yield
    finally:
        stop_following()
        if not await front.drain(DRAIN_SECONDS):
            log.warning("shutting down with Slack commands still running; their results are in the store")
        front.lanes.shutdown()
        front.close()
        if socket is not None:
            await socket.close_async()


async def _sweep(parts: AppParts) -> None:
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        if parts.front is not None:
            try:
                await parts.front.expire_questions()
            except Exception:
                log.exception("could not withdraw expired confirmation questions")


def _count_active(store: Store) -> int:
    with store.read() as session:
        return len(list_active(session=session))


def _parts_of(request: Request) -> AppParts:
    parts: AppParts = request.app.state.parts
    return parts


# ---------------------------------------------------------------- routes


async def healthz() -> dict[str, str]:
    """The process is alive and serving; says nothing about its dependencies (see /readyz)."""
    return {"status": "ok"}


async def readyz(request: Request) -> JSONResponse:
    """Ready to take commands: the database is reachable and migrated, the Kubernetes API answers."""
    pipeline = _parts_of(request).pipeline
    database, cluster, lifecycle = await asyncio.gather(
        asyncio.to_thread(_database_problem, pipeline.store),
        asyncio.to_thread(_cluster_problem, pipeline),
        asyncio.to_thread(_lifecycle_problem, pipeline),
    )
    checks = (("database", database), ("kubernetes", cluster), ("lifecycle", lifecycle))
    reasons = {name: problem for name, problem in checks if problem}
    if reasons:
        return JSONResponse({"ready": False, "reasons": reasons}, status_code=503)
    return JSONResponse({"ready": True})


def _database_problem(store: Store) -> str | None:
    try:
        current = current_revision(store.engine)
    except StoreError as exc:
        return str(exc)
    except Exception as exc:
        return f"cannot read the schema revision of {store.display_url}: {exc.__class__.__name__}"
    head = head_revision()
    if current != head:
        state = "has no meshbot schema" if current is None else f"is at revision {current}"
        return f"database {store.display_url} {state}, not {head}: run `meshbot migrate`"
    return None


def _cluster_problem(pipeline: Pipeline) -> str | None:
    return unreachable(pipeline.kube, timeout=READY_TIMEOUT_SECONDS)


def _lifecycle_problem(pipeline: Pipeline) -> str | None:
    """Not ready while no replica leads: faults would be refused (or, worse, never end)."""
    if pipeline.leadership is None:
        return None
    try:
        leadership = pipeline.leadership()
    except MeshError as exc:
        return f"cannot tell whether a replica leads the lifecycle: {exc}"
    return None if leadership.fresh else f"no replica leads the lifecycle: {leadership.problem}"


async def metrics(request: Request) -> Response:
    body = await asyncio.to_thread(_parts_of(request).metrics.exposition)
    return Response(body, media_type=CONTENT_TYPE)


async def slack_events(request: Request) -> Response:
    """Slash commands, button presses and events, through Bolt; its reply is the ack."""
    parts = _parts_of(request)
    if parts.slack_handler is None:
        return JSONResponse({"error": messages.SLACK_NOT_CONFIGURED}, status_code=404)
    started = time.perf_counter()
    client = request.client.host if request.client else "-"
    refusal = gate.check(request.headers, await request.body(), parts.slack_signing_secret)
    if refusal is not None:
        return _refuse(parts, client, refusal)
    try:
        plain = gate.without_payload_word(request.headers, await request.body(), parts.slack_signing_secret)
        response: Response
        if plain is None:
            response = await parts.slack_handler.handle(request)
        else:
            text, headers = plain
            bolt_request = AsyncBoltRequest(body=text, query=request.url.query, headers=headers)
            response = to_starlette_response(await parts.slack_handler.app.async_dispatch(bolt_request))
    except Exception as exc:
        # The last line of defence: whatever slipped past the gate, the sender gets one line and
        # the log gets one line (the traceback only at debug level; it may quote the body).
        log.debug("Bolt failed on a Slack request", exc_info=True)
        return _refuse(parts, client, gate.Refusal(400, "error", f"Bolt raised {exc.__class__.__name__}"))
    elapsed = time.perf_counter() - started
    if response.status_code == 401:
        reason = "signature" if b"invalid request" in bytes(response.body) else "authorization"
        parts.metrics.slack_rejected.labels(reason).inc()
        log.warning("refused a Slack request from %s: %s check failed", client, reason)
    else:
        parts.metrics.ack_seconds.labels(_kind(await request.body(), request.headers)).observe(elapsed)
    return response


def _refuse(parts: AppParts, client: str, refusal: gate.Refusal) -> Response:
    parts.metrics.slack_rejected.labels(refusal.reason).inc()
    log.warning("refused a Slack request from %s: %s", client, refusal.detail)
    return PlainTextResponse(refusal.detail, status_code=refusal.status)


def _kind(body: bytes, headers: Any) -> str:
    if "json" in headers.get("content-type", ""):
        return "event"
    if body.startswith(b"payload="):
        return "interactive"
    return "command" if b"command=" in body else "other"
