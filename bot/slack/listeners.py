"""The Bolt listeners: acknowledge at once, then hand over to SlackFront. Nothing else here.

Slack gives up after 3 s, so every listener acks before any slow call; with
``process_before_response=False`` Bolt returns the ack to Slack while the rest of the listener
(the pipeline, in a worker thread) goes on.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.lifecycle.notify import CANCEL_ACTION as SCHEDULE_CANCEL
from bot.lifecycle.notify import POSTPONE_ACTION as SCHEDULE_POSTPONE
from bot.lifecycle.notify import SKIP_ACTION as SCHEDULE_SKIP
from bot.slack import messages, render
from bot.slack.front import Origin, SlackFront
from core.store import Actor

COMMAND = "/mesh"


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


def register(app: AsyncApp, front: SlackFront) -> None:
    @app.command(COMMAND)
    async def on_mesh(ack: AsyncAck, body: dict[str, Any]) -> None:
        text = str(body.get("text") or "")
        await ack(text=messages.working_on(text), response_type="ephemeral")
        await front.command(text, command_origin(body))

    @app.action(render.ACTION_STOP)
    async def on_stop(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await front.stop_pressed(_value(body), action_origin(body))

    @app.action(render.ACTION_EXTEND)
    async def on_extend(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await front.extend_pressed(_value(body), action_origin(body))

    @app.action(render.ACTION_CONFIRM)
    async def on_confirm(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await front.confirm_pressed(_value(body), action_origin(body))

    @app.action(render.ACTION_APPROVE)
    async def on_approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await front.approve_pressed(_value(body), action_origin(body))

    # A schedule's reminder: each button is the /mesh command a person could type instead.
    @app.action(SCHEDULE_POSTPONE)
    async def on_postpone(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await front.schedule_pressed(f"postpone {_value(body)}", action_origin(body))

    @app.action(SCHEDULE_SKIP)
    async def on_skip(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await front.schedule_pressed(f"skip {_value(body)}", action_origin(body))

    @app.action(SCHEDULE_CANCEL)
    async def on_cancel_schedule(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        schedule_id = _value(body).partition("@")[0]
        await front.schedule_pressed(f"unschedule {schedule_id}", action_origin(body))

    @app.action(render.ACTION_CANCEL)
    async def on_cancel(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await front.cancel_pressed(_value(body), action_origin(body))
