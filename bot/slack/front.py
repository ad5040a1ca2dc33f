"""What the Slack listeners do once they have acknowledged: run the pipeline, answer in Slack.

The pipeline is synchronous (the Kubernetes client is), so it runs in a bounded lane of worker
threads (bot.work) while the event loop keeps acknowledging other requests; the listeners take a
place in the lane before the ack, and say "busy" when there is none. Results reach Slack through
the slash command's ``response_url`` (ephemeral replies) or ``chat.postMessage``; a fault gets its own thread
(bot.slack.threads). Whatever Slack does, the command's result is already in the store: a failed
delivery is logged and counted, never retried forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import SQLAlchemyError

from bot.confirm import Pending, PendingConfirmations
from bot.events import Published
from bot.lifecycle.cards import send_report_card
from bot.lifecycle.charts import LaterCharts
from bot.metrics import Metrics
from bot.pipeline import Pipeline, Unconfirmed
from bot.slack import messages, render
from bot.slack.client import webhook_client
from bot.slack.middleware import Deliveries
from bot.slack.threads import SLACK_FAILURES, SlackNotifier, Threads
from bot.work import Admission, Lanes
from core.clock import utcnow
from core.store import Actor, Experiment, ExperimentState, Source, StoreError
from handlers.reply import Reply

log = logging.getLogger(__name__)

# response_url takes 5 posts in 30 minutes; keep one for a later answer to a question.
MAX_RESPONSE_URL_PAGES = 4
# A thread update is a few Slack calls, each retried on 429 within the client.
FOLLOW_TIMEOUT_SECONDS = 60.0
_LIVE = (ExperimentState.ACTIVE.value, ExperimentState.ENDING.value)


@dataclass(frozen=True)
class Origin:
    """Where a request came from in Slack: who, in which channel, and how to answer them."""

    actor: Actor
    channel: str | None
    response_url: str | None = None


class SlackFront:
    def __init__(
        self,
        *,
        pipeline: Pipeline,
        client: AsyncWebClient,
        threads: Threads,
        confirmations: PendingConfirmations,
        metrics: Metrics,
        lanes: Lanes | None = None,
        card_tail_seconds: float = 0.0,
    ) -> None:
        self.pipeline = pipeline
        self.client = client
        self.threads = threads
        self.confirmations = confirmations
        self.metrics = metrics
        self.lanes = lanes or Lanes()
        self.deliveries = Deliveries(metrics, pipeline.store)
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._after_ack: set[asyncio.Future[None]] = set()
        # Report cards of faults ended by a command (the lifecycle posts the others): built off the
        # command's worker, so `fault clear` answers without waiting for Prometheus and matplotlib;
        # one at a time, so `fault clear all` cannot start a thread per fault.
        self._cards = ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-cards")
        self._charts = LaterCharts()
        self._card_tail_seconds = card_tail_seconds

    # ------------------------------------------------------------ before and right after the ack

    def admission(self, text: str | None = None, *, urgent: bool = False) -> Admission | None:
        """A place for this work (a typed command's ``text``, or a button's): None when its lane is
        full, counted, and the caller answers "busy" instead of queueing. Never blocks."""
        lane = self.lanes.urgent if urgent else self.lanes.for_command(text or "")
        admission = lane.admit()
        if admission is None:
            self.metrics.slack_busy.labels(lane.name).inc()
            log.warning("the %s lane is full (%d places): answered busy", lane.name, lane.capacity)
        return admission

    def after_ack(self, work: Awaitable[None]) -> None:
        """Run what follows an acknowledgement as a task of its own: Bolt sends the ack when the
        listener returns (``process_before_response=True``), so the listener returns right after
        ``ack()``. Counted at once, so a shutdown's drain waits for it; kept referenced until done.
        """
        self._begin()
        task = asyncio.ensure_future(self._finish(work))
        self._after_ack.add(task)
        task.add_done_callback(self._after_ack.discard)

    async def _finish(self, work: Awaitable[None]) -> None:
        try:
            await work
        except Exception:
            log.exception("a Slack request failed after it was acknowledged")
        finally:
            self._end()

    async def busy(self, origin: Origin) -> None:
        """For button presses, whose ack Slack does not show."""
        await self._tell(origin, messages.BUSY)

    async def first_delivery(self, key: str | None, origin: Origin) -> bool:
        """Claim a delivery before working on it (see bot.slack.middleware.Deliveries)."""
        if key is None:
            return True
        try:
            return await self.lanes.store.run(self.deliveries.claim, key)
        except (StoreError, SQLAlchemyError) as exc:
            # Without the shared record a retry could run twice: do nothing, and say so.
            log.error("cannot record a Slack delivery as seen, not running it: %s", exc.__class__.__name__)
            await self._tell(origin, messages.NOT_RECORDED)
            return False

    # ------------------------------------------------------------ entry points (after ack)

    async def command(self, text: str, origin: Origin) -> None:
        """A /mesh slash command."""
        async with self._tracked():
            reply, delivered = await self.run(text, origin)
            if isinstance(reply, Unconfirmed):
                await self._ask(reply, text, origin)
            elif not delivered:
                await self.deliver(reply, origin)

    async def stop_pressed(self, experiment_id: str, origin: Origin) -> None:
        await self._button_command(f"fault clear {experiment_id}", origin)

    async def schedule_pressed(self, text: str, origin: Origin) -> None:
        """A reminder's Postpone / Skip / Cancel: the command runs as the presser, who sees the reply."""
        async with self._tracked():
            reply, _ = await self.run(text, origin)
            if isinstance(reply, Unconfirmed):
                await self._ask(reply, text, origin)
                return
            await self._ephemeral(origin, reply)

    async def extend_pressed(self, experiment_id: str, origin: Origin) -> None:
        await self._button_command(f"fault extend {experiment_id} {render.EXTEND_BY}", origin)

    async def _open_question(self, token: str, origin: Origin) -> Pending | None:
        """The question a button refers to, or None after telling the presser it is gone."""
        pending = await self.lanes.store.run(self.confirmations.peek, token)
        if pending is None:
            await self._tell(origin, messages.QUESTION_GONE)
        return pending

    async def confirm_pressed(self, token: str, origin: Origin) -> None:
        async with self._tracked():
            pending = await self._open_question(token, origin)
            if pending is None:
                return
            if pending.question.two_person:
                # The asker's own Confirm would skip the second person the policy demands.
                await self._tell(origin, messages.APPROVAL_NOT_CONFIRM)
                return
            if not _same_person(pending.actor, origin.actor):
                await self._tell(origin, messages.only_asker_confirms(pending.actor.user_id))
                return
            await self._answer(token, origin, approved=False)

    async def approve_pressed(self, token: str, origin: Origin) -> None:
        async with self._tracked():
            pending = await self._open_question(token, origin)
            if pending is None:
                return
            if not pending.question.two_person:
                # A one-person question is its asker's to confirm; a button value can be replayed
                # by anyone, so Approve must not answer it on their behalf.
                await self._tell(origin, messages.confirm_not_approval(pending.actor.user_id))
                return
            if _same_person(pending.actor, origin.actor):
                await self._tell(origin, messages.SECOND_PERSON_NEEDED)
                return
            await self._answer(token, origin, approved=True)

    async def cancel_pressed(self, token: str, origin: Origin) -> None:
        async with self._tracked():
            pending = await self._open_question(token, origin)
            if pending is None:
                return
            if not _same_person(pending.actor, origin.actor):
                await self._tell(origin, messages.only_asker_cancels(pending.actor.user_id))
                return
            taken = await self.lanes.store.run(self.confirmations.take, token)
            if taken is None:
                await self._tell(origin, messages.QUESTION_GONE)
                return
            why = messages.cancelled_by(origin.actor)
            await self.lanes.store.run(
                self.pipeline.withdraw,
                taken.text,
                actor=taken.actor,
                source=taken.source,
                channel=taken.channel,
                why=why,
            )
            await self._replace(origin, render.answered(taken, f":no_entry_sign: {why}"), why)

    async def expire_questions(self) -> int:
        """Withdraw (audit) the questions nobody answered in time; run now and then by the app.

        Every replica sweeps; taking a question out of the store comes first, so each expired
        question is withdrawn, audited and taken off Slack by exactly one of them."""
        gone = await self.lanes.store.run(self.confirmations.expire)
        for pending in gone:
            await self.lanes.store.run(
                self.pipeline.withdraw,
                pending.text,
                actor=pending.actor,
                source=pending.source,
                channel=pending.channel,
                why=messages.NOT_CONFIRMED_IN_TIME,
            )
            blocks = render.answered(pending, messages.NOT_CONFIRMED_IN_TIME)
            if pending.message_ts and pending.channel:
                # Asked in the channel (two-person): take the Approve button away there.
                await self._call(
                    "chat.update",
                    channel=pending.channel,
                    ts=pending.message_ts,
                    text=messages.NOT_CONFIRMED_IN_TIME,
                    blocks=blocks,
                )
            elif pending.response_url:
                await self._post_response_url(
                    pending.response_url,
                    blocks=blocks,
                    text=messages.NOT_CONFIRMED_IN_TIME,
                    replace_original=True,
                )
        return len(gone)

    async def drain(self, timeout: float) -> bool:
        """Wait for commands still running (shutdown); False when some were still busy."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------ running

    async def run(
        self, text: str, origin: Origin, *, confirmed_by: Actor | None = None, urgent: bool = False
    ) -> tuple[Reply, bool]:
        """Run through the pipeline (whose events keep fault threads in step, see ``follow``), in
        the lane the listener admitted it to. Returns the reply and whether it was already shown
        (in a new fault's thread)."""
        lane = self.lanes.urgent if urgent else self.lanes.for_command(text)
        reply = await lane.run(
            self.pipeline.run,
            text,
            actor=origin.actor,
            source=Source.SLACK,
            channel=origin.channel,
            on_progress=_log_progress,
            confirmed_by=confirmed_by,
        )
        if isinstance(reply, Unconfirmed):
            return reply, False
        started = [e.experiment_id for e in reply.events if e.kind == "started"]
        if not (reply.ok and started):
            return reply, False
        experiment = await self.lanes.store.run(self.threads.load, started[0])
        return reply, experiment is not None and experiment.thread_ts is not None

    def follow(self, published: Published) -> None:
        """The pipeline's experiment events, said in the experiments' threads. Called in the thread
        that ran the command (any transport's), so it waits here for Slack, not on the event loop."""
        if published.source == Source.SCHEDULER:
            # The lifecycle opens scheduled faults' threads and reports into them itself.
            return
        # The loop first: a coroutine made before finding there is no loop is never awaited.
        loop = self.threads.require_loop()
        ended = asyncio.run_coroutine_threadsafe(self._follow(published), loop).result(FOLLOW_TIMEOUT_SECONDS)
        if ended is not None:
            self._cards.submit(
                send_report_card,
                self.pipeline.prometheus,
                SlackNotifier(self.threads),
                ended,
                _how(ended),
                now=utcnow,
                charts=self._charts,
                tail_seconds=self._card_tail_seconds,
            )

    def close(self) -> None:
        """Stop taking report cards; those under way finish (each bounded by Slack's time-outs)."""
        self._cards.shutdown(wait=False, cancel_futures=True)
        self._charts.stop()

    async def _follow(self, published: Published) -> Experiment | None:
        """Returns the experiment when this event ended it, for its report card."""
        event, actor = published.event, published.actor
        by = actor.user_id if actor.team_id else None
        experiment = await self.lanes.store.run(self.threads.load, event.experiment_id)
        if experiment is None:
            return None
        if event.kind == "started":
            if experiment.thread_ts is None and experiment.state == ExperimentState.ACTIVE.value:
                await self.threads.start(experiment.id, details=event.text)
        elif experiment.thread_ts is None:
            return None
        elif event.kind == "extended":
            await self.threads.refresh_parent(experiment)
            await self.threads.post_to_thread(experiment, event.text, by=by)
        elif experiment.state not in _LIVE:
            await self.threads.post_to_thread(experiment, event.text, by=by)
            await self.threads.finish_parent(experiment, messages.how_it_ended(experiment))
            return experiment if event.kind == "ended" else None
        return None

    async def _button_command(self, text: str, origin: Origin) -> None:
        async with self._tracked():
            reply, delivered = await self.run(text, origin)
            if isinstance(reply, Unconfirmed):
                await self._ask(reply, text, origin)
                return
            if not reply.ok:
                await self._ephemeral(origin, reply)
                return
            experiment = await self.lanes.store.run(self.threads.load, reply.experiment_id or "")
            if not delivered and (experiment is None or experiment.thread_ts is None):
                await self._ephemeral(origin, reply)

    async def _answer(self, token: str, origin: Origin, *, approved: bool) -> None:
        pending = await self.lanes.store.run(self.confirmations.take, token)
        if pending is None:
            await self._tell(origin, messages.QUESTION_GONE)
            return
        if self.confirmations.expired(pending):
            await self.lanes.store.run(
                self.pipeline.withdraw,
                pending.text,
                actor=pending.actor,
                source=pending.source,
                channel=pending.channel,
                why=messages.NOT_CONFIRMED_IN_TIME,
            )
            await self._replace(
                origin, render.answered(pending, messages.NOT_CONFIRMED_IN_TIME), messages.EXPIRED
            )
            return
        asker = Origin(pending.actor, pending.channel, pending.response_url)
        reply, delivered = await self.run(pending.text, asker, confirmed_by=origin.actor, urgent=True)
        if approved and reply.outcome == "denied":
            # This approver may not; the question stays open for someone who may.
            await self.lanes.store.run(self.confirmations.put_back, pending)
            await self._ephemeral(origin, reply)
            return
        verb = messages.approved_by(origin.actor) if approved else messages.CONFIRMED
        first = reply.text.splitlines()[0] if reply.text else reply.outcome
        await self._replace(origin, render.answered(pending, f"{verb}: {first}"), f"{verb}: {first}")
        if not delivered:
            await self.deliver(reply, asker)

    # ------------------------------------------------------------ answering in Slack

    async def deliver(self, reply: Reply, origin: Origin) -> None:
        """Ephemeral replies through response_url; the rest to the channel with chat.postMessage,
        then the reply's images uploaded beside it (see ``_upload``)."""
        if reply.attachments and (reply.ephemeral or not origin.channel):
            # A response_url carries no files, and an upload would show the images to everyone.
            reply = replace(reply, text=f"{reply.text}\n{messages.IMAGES_NOT_SHOWN}")
        expires_at = await self.lanes.store.run(self._expiry, reply.experiment_id)
        pages = render.pages(reply, expires_at=expires_at)
        text = render.fallback_text(reply)
        if reply.ephemeral or not origin.channel:
            for page in pages[:MAX_RESPONSE_URL_PAGES]:
                if origin.response_url:
                    await self._post_response_url(origin.response_url, blocks=page, text=text)
                elif origin.channel:
                    await self._call(
                        "chat.postEphemeral",
                        channel=origin.channel,
                        user=origin.actor.user_id,
                        text=text,
                        blocks=page,
                    )
            return
        for page in pages:
            if (
                await self._call(
                    "chat.postMessage", channel=origin.channel, text=text, blocks=page, unfurl_links=False
                )
                is None
            ):
                # Not in the channel, or Slack failing: the slash command's response_url may still work.
                if origin.response_url:
                    await self._post_response_url(
                        origin.response_url, blocks=page, text=text, response_type="in_channel"
                    )
                else:
                    return
        await self._upload(reply, origin.channel)

    async def _upload(self, reply: Reply, channel: str) -> None:
        """A shared reply's images: into its fault's thread when it has one, else the channel.
        After the text, so a failed upload (logged, counted) never costs the answer."""
        if not reply.attachments:
            return
        experiment = (
            await self.lanes.store.run(self.threads.load, reply.experiment_id)
            if reply.experiment_id
            else None
        )
        if experiment is not None and experiment.thread_ts:
            await self.threads.upload(experiment, *reply.attachments)
        else:
            await self.threads.upload_to(channel, reply.attachments)

    async def _ask(self, reply: Unconfirmed, text: str, origin: Origin) -> None:
        pending = await self.lanes.store.run(
            self.confirmations.hold,
            text=text,
            actor=origin.actor,
            source=Source.SLACK,
            channel=origin.channel,
            question=reply.question,
            response_url=origin.response_url,
        )
        blocks = render.question(pending)
        if pending.question.two_person and origin.channel:
            # Others must see it to approve it.
            posted = await self._call(
                "chat.postMessage", channel=origin.channel, text=reply.text, blocks=blocks
            )
            if posted is not None:
                # Whichever replica withdraws it later must find the message to take the button off.
                await self.lanes.store.run(self.confirmations.shown_as, pending, str(posted["ts"]))
                await self._tell(origin, messages.WAITING_FOR_APPROVAL)
                return
        if origin.response_url:
            await self._post_response_url(origin.response_url, blocks=blocks, text=reply.text)
        elif origin.channel:
            await self._call(
                "chat.postEphemeral",
                channel=origin.channel,
                user=origin.actor.user_id,
                text=reply.text,
                blocks=blocks,
            )

    async def _ephemeral(self, origin: Origin, reply: Reply) -> None:
        if origin.channel is None:
            return
        await self._call(
            "chat.postEphemeral",
            channel=origin.channel,
            user=origin.actor.user_id,
            text=render.fallback_text(reply),
            blocks=render.render(reply),
        )

    async def _tell(self, origin: Origin, text: str) -> None:
        await self._ephemeral(origin, Reply(text, ephemeral=True))

    async def _replace(self, origin: Origin, blocks: list[dict[str, Any]], text: str) -> None:
        """Replace the message whose button was pressed (origin.response_url is the button's)."""
        if origin.response_url:
            await self._post_response_url(
                origin.response_url, blocks=blocks, text=text, replace_original=True
            )

    async def _post_response_url(
        self,
        url: str,
        *,
        blocks: list[dict[str, Any]],
        text: str,
        response_type: str = "ephemeral",
        replace_original: bool = False,
    ) -> bool:
        try:
            response = await webhook_client(url).send(
                text=text, blocks=blocks, response_type=response_type, replace_original=replace_original
            )
        except SLACK_FAILURES as exc:
            log.error("posting to response_url failed: %s", exc)
            self.metrics.slack_api_failures.labels("response_url").inc()
            return False
        if response.status_code != 200:
            log.error("response_url answered %s: %s", response.status_code, response.body)
            self.metrics.slack_api_failures.labels("response_url").inc()
            return False
        return True

    async def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return await self.client.api_call(method, json=kwargs)
        except SLACK_FAILURES as exc:
            log.error("Slack %s failed for channel %s: %s", method, kwargs.get("channel"), exc)
            self.metrics.slack_api_failures.labels(method).inc()
            return None

    def _expiry(self, experiment_id: str | None) -> datetime | None:
        if not experiment_id:
            return None
        experiment = self.threads.load(experiment_id)
        return experiment.expires_at if experiment is not None and experiment.state in _LIVE else None

    @contextlib.asynccontextmanager
    async def _tracked(self) -> AsyncIterator[None]:
        self._begin()
        try:
            yield
        except Exception:
            # After the ack nobody is waiting for an exception: log it with the traceback.
            log.exception("a Slack request failed after it was acknowledged")
        finally:
            self._end()

    def _begin(self) -> None:
        self._inflight += 1
        self._idle.clear()

    def _end(self) -> None:
        self._inflight -= 1
        if self._inflight == 0:
            self._idle.set()


def _how(experiment: Experiment) -> str:
    """The card's "how it ended": "cleared by <name>" for a command."""
    reason = (experiment.end_reason or experiment.state).removesuffix(" by user")
    by = experiment.ended_by_name or experiment.ended_by_user
    return f"{reason} by {by}" if by else reason


def _same_person(a: Actor, b: Actor) -> bool:
    return a.user_id == b.user_id and a.team_id == b.team_id


def _log_progress(line: str) -> None:
    log.info("progress: %s", line)


__all__ = ["Origin", "Pending", "SlackFront"]
