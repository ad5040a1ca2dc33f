"""The Bolt listeners: acknowledge at once, then hand over to SlackFront. Nothing else here.

Slack gives up after 3 s, so every listener acks before any slow call — and before any wait for a
thread: a full lane is answered "busy" at once (bot.work). Bolt answers Slack when a listener
returns (``process_before_response=True``), so each listener acks, hands the rest (the pipeline,
in a worker thread) to a task of the front's, and returns. Bolt's other mode, which returns while
the listener goes on, polls for the ack every 10 ms: that poll alone was most of an ack's time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.lifecycle.notify import CANCEL_ACTION as SCHEDULE_CANCEL
from bot.lifecycle.notify import POSTPONE_ACTION as SCHEDULE_POSTPONE
from bot.lifecycle.notify import SKIP_ACTION as SCHEDULE_SKIP
from bot.slack import messages, render
from bot.slack.front import Origin, SlackFront
from bot.slack.middleware import DELIVERY_KEY, Next
from bot.work import Admission
from core.store import Actor

COMMAND = "/mesh"
RETRY = "meshbot_slack_retry"


def command_origin(body: dict[str, Any]) -> Origin:
    actor = Actor(user_id=body["user_id"], team_id=body.get("team_id"), display_name=body.get("user_name"))
    return Origin(actor, body.get("channel_id"), body.get("response_url"))


def action_origin(body: dict[str, Any]) -> Origin:
    user = body.get("user") or {}
    team = user.get("team_id") or (body.get("team") or {}).get("id")
    actor = Actor(user_id=user["id"], team_id=team, display_name=user.get("username") or user.get("name"))
    return Origin(actor, (body.get("channel") or {}).get("id"), body.get("response_url"))


def _value(body: dict[str, Any]) -> str:
    return str((body.get("actions") or [{}])[0].get("value") or "")


async def _admitted(
    ack: AsyncAck,
    context: AsyncBoltContext,
    front: SlackFront,
    origin: Origin,
    work: Callable[[], Awaitable[None]],
    *,
    text: str | None = None,
    urgent: bool = False,
) -> None:
    """Take a place in the work's lane and ack — "busy" when there is none — then hand the rest
    (claiming the delivery, the work) to a task and return, which is when Bolt answers Slack.
    Nothing before the ack waits for a thread, a lock or the network."""
    admission = front.admission(text, urgent=urgent)
    if text is not None:
        if admission is None:
            await ack(text=messages.BUSY, response_type="ephemeral")
            return
        if context.get(RETRY):
            # A retry's ack says nothing: the first delivery's may have arrived late after all.
            await ack()
        else:
            await ack(text=messages.working_on(text), response_type="ephemeral")
    else:
        await ack()
        if admission is None:
            front.after_ack(front.busy(origin))
            return
    front.after_ack(_claimed_then(front, admission, context.get(DELIVERY_KEY), origin, work))


async def _claimed_then(
    front: SlackFront,
    admission: Admission,
    key: str | None,
    origin: Origin,
    work: Callable[[], Awaitable[None]],
) -> None:
    async with admission.held():
        if await front.first_delivery(key, origin):
            await work()


def register(app: AsyncApp, front: SlackFront) -> None:
    @app.middleware
    async def note_retries(req: AsyncBoltRequest, resp: BoltResponse, next: Next) -> BoltResponse:
        req.context[RETRY] = bool(req.headers.get("x-slack-retry-num"))
        await next()
        return resp

    @app.command(COMMAND)
    async def on_mesh(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        text = str(body.get("text") or "")
        origin = command_origin(body)
        await _admitted(ack, context, front, origin, lambda: front.command(text, origin), text=text)

    # What ends, extends or answers a question takes the urgent lane: never behind `status`.
    @app.action(render.ACTION_STOP)
    async def on_stop(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        origin = action_origin(body)
        await _admitted(
            ack, context, front, origin, lambda: front.stop_pressed(_value(body), origin), urgent=True
        )

    @app.action(render.ACTION_EXTEND)
    async def on_extend(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        origin = action_origin(body)
        await _admitted(
            ack, context, front, origin, lambda: front.extend_pressed(_value(body), origin), urgent=True
        )

    @app.action(render.ACTION_CONFIRM)
    async def on_confirm(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        origin = action_origin(body)
        await _admitted(
            ack, context, front, origin, lambda: front.confirm_pressed(_value(body), origin), urgent=True
        )

    @app.action(render.ACTION_APPROVE)
    async def on_approve(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        origin = action_origin(body)
        await _admitted(
            ack, context, front, origin, lambda: front.approve_pressed(_value(body), origin), urgent=True
        )

    # A schedule's reminder: each button is the /mesh command a person could type instead.
    @app.action(SCHEDULE_POSTPONE)
    async def on_postpone(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        origin = action_origin(body)
        await _admitted(
            ack, context, front, origin, lambda: front.schedule_pressed(f"postpone {_value(body)}", origin)
        )

    @app.action(SCHEDULE_SKIP)
    async def on_skip(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        origin = action_origin(body)
        await _admitted(
            ack, context, front, origin, lambda: front.schedule_pressed(f"skip {_value(body)}", origin)
        )

    @app.action(SCHEDULE_CANCEL)
    async def on_cancel_schedule(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        origin = action_origin(body)
        schedule_id = _value(body).partition("@")[0]
        await _admitted(
            ack, context, front, origin, lambda: front.schedule_pressed(f"unschedule {schedule_id}", origin)
        )

    @app.action(render.ACTION_CANCEL)
    async def on_cancel(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        origin = action_origin(body)
        await _admitted(
            ack, context, front, origin, lambda: front.cancel_pressed(_value(body), origin), urgent=True
        )
