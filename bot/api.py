"""The small JSON API under /api/v1, for scripts and CI: experiments, the audit log, commands.

Every route needs ``Authorization: Bearer $MESHBOT_API_TOKEN``; without a configured token the API
answers 401 to everyone. The token holder acts like the CLI, a trusted administrator, with one
difference: risky commands need ``"confirmed": true``, and two-person namespaces cannot be
changed from here at all (a second person approves in Slack).
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from bot.pipeline import Pipeline, Unconfirmed
from core.settings import Settings
from core.store import Actor, FilterError, Source, event_to_dict, list_active, parse_filters, query_events
from core.store.models import Experiment
from handlers.reply import Reply, reply_data


@dataclass
class ApiParts:
    """What the API's routes use, built by the app's lifespan and kept on ``app.state.api``."""

    settings: Settings
    pipeline: Pipeline  # with the confirm step; its store is the audit log's


STATUS_BY_OUTCOME = {"ok": 200, "refused": 422, "denied": 403, "error": 502}
# fullmatch: with `^…$`, `alice\n` would pass and reach the audit log.
_ACTOR = re.compile(r"[A-Za-z0-9._@-]{1,64}")


def parts(request: Request) -> ApiParts:
    found: ApiParts = request.app.state.api
    return found


PartsDep = Annotated[ApiParts, Depends(parts)]


def require_token(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    expected = parts(request).settings.api_token
    challenge = {"WWW-Authenticate": "Bearer"}
    if expected is None:
        raise HTTPException(401, "the API is turned off: set MESHBOT_API_TOKEN to use it", headers=challenge)
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        token.strip().encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(401, "missing or wrong bearer token", headers=challenge)


router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)], tags=["api"])


def experiment_to_dict(experiment: Experiment) -> dict[str, Any]:
    def when(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": experiment.id,
        "kind": experiment.kind,
        "parameters": experiment.parameters,
        "cluster": experiment.cluster,
        "namespace": experiment.namespace,
        "service": experiment.service,
        "state": experiment.state,
        "created_by": experiment.created_by_name or experiment.created_by_user,
        "channel": experiment.channel,
        "thread_ts": experiment.thread_ts,
        "started_at": when(experiment.started_at),
        "expires_at": when(experiment.expires_at),
    }


@router.get("/experiments")
def experiments(svc: PartsDep, namespace: str | None = None) -> dict[str, Any]:
    """Active experiments (active or being reverted), oldest first."""
    with svc.pipeline.store.read() as session:
        active = list_active(session=session, namespace=namespace)
        return {"experiments": [experiment_to_dict(e) for e in active]}


@router.get("/audit")
def audit(request: Request, svc: PartsDep) -> dict[str, Any]:
    """The audit log, newest first, filtered like `/mesh audit`: ``?service=web-svc&since=24h``."""
    words = [f"{key}={value}" for key, value in request.query_params.multi_items()]
    try:
        query = parse_filters(words)
    except FilterError as exc:
        raise HTTPException(400, str(exc)) from None
    with svc.pipeline.store.read() as session:
        page = query_events(session=session, query=query)
        return {"events": [event_to_dict(e) for e in page.events], "next_before": page.next_before}


class CommandIn(BaseModel):
    command: str = Field(min_length=1, max_length=2000, examples=["fault delay 3s web-svc.emojivoto-istio"])
    actor: str = Field(default="api", description="Who to record in the audit log (as api:<actor>).")
    channel: str | None = Field(
        default=None, description="Act as if in this Slack channel (its default namespace)."
    )
    confirmed: bool = Field(default=False, description="Answer yes to a confirmation question.")


def _body(reply: Reply) -> dict[str, Any]:
    return {
        "outcome": reply.outcome,
        "text": reply.text,
        "experiment_id": reply.experiment_id,
        "target": {
            "cluster": reply.target.cluster,
            "namespace": reply.target.namespace,
            "service": reply.target.service,
        },
        "data": reply_data(reply),
        "images": [
            {
                "name": a.name,
                "title": a.title,
                "mime": a.mime,
                "base64": base64.b64encode(a.content).decode(),
            }
            for a in reply.attachments
        ],
    }


@router.post("/commands")
async def command(body: CommandIn, svc: PartsDep) -> JSONResponse:
    """Run one /mesh command through the same pipeline as Slack, with source `api`."""
    if not _ACTOR.fullmatch(body.actor):
        raise HTTPException(422, "actor must be 1-64 letters, digits, '.', '_', '@' or '-'")
    actor = Actor(user_id=f"api:{body.actor}", display_name=body.actor)

    def run(confirmed: bool) -> Reply:
        return svc.pipeline.run(
            body.command,
            actor=actor,
            source=Source.API,
            channel=body.channel,
            confirmed_by=actor if confirmed else None,
        )

    reply = await asyncio.to_thread(run, False)
    if isinstance(reply, Unconfirmed):
        if reply.question.two_person or not body.confirmed:
            hint = (
                "a second person must approve this in Slack"
                if reply.question.two_person
                else 'send it again with "confirmed": true'
            )
            return JSONResponse(
                {"outcome": "unconfirmed", "question": reply.text, "hint": hint}, status_code=409
            )
        reply = await asyncio.to_thread(run, True)
    status = 400 if reply.usage_error else STATUS_BY_OUTCOME.get(reply.outcome, 500)
    return JSONResponse(_body(reply), status_code=status)
