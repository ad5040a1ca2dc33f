"""A fault's Slack thread: the parent message, replies in it, and the parent's final state.

A fault started from Slack gets a parent message in its channel (what runs where until when,
with Stop now / Extend 10 min); everything that happens to the experiment afterwards is said in
that thread. The experiment's ``thread_ts`` links the two, so anything holding the experiment —
the Slack front, the HTTP API, a later scheduler — can talk in its thread:

    threads = app.state.threads
    await threads.post_to_thread(experiment, "Guard tripped: error rate above 20%")
    await threads.finish_parent(experiment, "Expired after 10m")

Images (a Reply's attachments, a report card's chart) go the same way, with ``files_upload_v2``:

    await threads.upload(experiment, attachment)              # into the fault's thread
    await threads.upload_to(channel, attachments, thread_ts=None)   # anywhere else

From a worker thread use the ``*_blocking`` forms. Slack being unreachable never loses anything:
the experiment is in the store either way; a failure is logged, counted, and reported as False.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from aiohttp import ClientError
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import render
from core.store import Experiment, ExperimentNotFound, Store, get_experiment, set_thread
from handlers.reply import Attachment

log = logging.getLogger(__name__)

SLACK_FAILURES = (SlackApiError, SlackClientError, ClientError, OSError, asyncio.TimeoutError)
UNDELIVERED_KEPT = 5
T = TypeVar("T")
# The label counted in meshbot_slack_api_failures_total: one upload is three calls to Slack.
UPLOAD_METHOD = "files_upload_v2"


def remember_thread(store: Store, *, experiment_id: str, thread_ts: str) -> Experiment:
    """Keep the parent message's ts on the experiment, so later events go into its thread."""
    with store.write() as session:
        return set_thread(session=session, experiment_id=experiment_id, thread_ts=thread_ts)


class Threads:
    def __init__(
        self,
        client: AsyncWebClient,
        store: Store,
        *,
        on_failure: Callable[[str], None] = lambda _method: None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self._on_failure = on_failure
        self._loop = loop
        # What could not be said in a thread, by experiment, said there the next time Slack
        # answers — so a person reading the thread later sees the gap, not a silent hole.
        self._undelivered: dict[str, list[str]] = {}

    async def start(self, experiment_id: str, *, details: str | None = None) -> str | None:
        """Post the parent message of a new fault and remember it; ``details`` goes in the thread.
        Returns the thread's ts, or None when Slack could not be reached."""
        experiment = await asyncio.to_thread(self._load, experiment_id)
        if experiment is None or not experiment.channel:
            return None
        response = await self.call(
            "chat.postMessage",
            channel=experiment.channel,
            text=render.fault_parent_text(experiment),
            blocks=render.fault_parent(experiment),
            unfurl_links=False,
        )
        if response is None:
            return None
        thread_ts = str(response["ts"])
        experiment = await asyncio.to_thread(
            remember_thread, self.store, experiment_id=experiment_id, thread_ts=thread_ts
        )
        if details:
            await self.post_to_thread(experiment, details)
        return thread_ts

    async def post_to_thread(
        self, experiment: Experiment, text: str, *, by: str | None = None, buttons: Sequence[Any] = ()
    ) -> str | None:
        """Say ``text`` (plain text) in the experiment's thread, as said ``by`` a Slack user id if
        given, with ``buttons`` under it; the message's ts, or None (no thread, or Slack unreachable)."""
        if not experiment.channel or not experiment.thread_ts:
            return None
        missed = self._undelivered.pop(experiment.id, [])
        if missed:
            # Said first, so the thread reads in the order things happened.
            backlog = "\n".join(["Not delivered earlier (Slack did not answer):", *missed])
            if await self._post_in_thread(experiment, backlog, by=None, buttons=()) is None:
                self._remember(experiment.id, [*missed, text])
                return None
        ts = await self._post_in_thread(experiment, text, by=by, buttons=buttons)
        if ts is None:
            self._remember(experiment.id, [text])
        return ts

    def _remember(self, experiment_id: str, texts: list[str]) -> None:
        kept = self._undelivered.setdefault(experiment_id, [])
        kept.extend(texts)
        # A thread is not a queue: keep the newest few, enough to show what was missed.
        del kept[: max(0, len(kept) - UNDELIVERED_KEPT)]

    async def _post_in_thread(
        self, experiment: Experiment, text: str, *, by: str | None, buttons: Sequence[Any]
    ) -> str | None:
        lines = [render.escape(t) for t in text.splitlines()] or [""]
        if by:
            lines[0] = f"<@{by}>: {lines[0]}"
        blocks = [render.section(chunk) for chunk in render.chunks(lines)][: render.MAX_BLOCKS - 1]
        if buttons:
            blocks.append({"type": "actions", "elements": [_button(b) for b in buttons][:25]})
        response = await self.call(
            "chat.postMessage",
            channel=experiment.channel,
            thread_ts=experiment.thread_ts,
            text=render.fallback_text_of(text),
            blocks=blocks[: render.MAX_BLOCKS],
            unfurl_links=False,
        )
        return str(response["ts"]) if response is not None else None

    async def upload(self, experiment: Experiment, *attachments: Attachment) -> bool:
        """Share images in the experiment's thread (its channel when it has no thread yet)."""
        if not experiment.channel:
            return False
        return await self.upload_to(experiment.channel, attachments, thread_ts=experiment.thread_ts)

    async def upload_to(
        self, channel: str, attachments: Sequence[Attachment], *, thread_ts: str | None = None
    ) -> bool:
        """Share images in a channel or thread, each titled; False (logged, counted) when Slack
        refused or failed — what the images show is in the text reply beside them."""
        if not attachments:
            return True
        uploads = [
            {"content": a.content, "filename": a.name, "title": a.title, "alt_txt": a.title}
            for a in attachments
        ]
        try:
            await self.client.files_upload_v2(file_uploads=uploads, channel=channel, thread_ts=thread_ts)
        except SLACK_FAILURES as exc:
            log.error(
                "Slack %s failed for channel %s (%s): %s",
                UPLOAD_METHOD,
                channel,
                ", ".join(a.name for a in attachments),
                exc,
            )
            self._on_failure(UPLOAD_METHOD)
            return False
        return True

    def upload_blocking(self, experiment: Experiment, *attachments: Attachment, timeout: float = 60) -> bool:
        return self._on_loop(lambda: self.upload(experiment, *attachments), timeout)

    async def refresh_parent(self, experiment: Experiment) -> bool:
        """Redraw a running fault's parent (after an extension: the new end time)."""
        return await self._update(experiment, render.fault_parent(experiment))

    async def finish_parent(self, experiment: Experiment, text: str) -> bool:
        """Turn the parent into its final state: how it ended, no buttons."""
        return await self._update(experiment, render.fault_parent(experiment, final=text))

    def post_to_thread_blocking(
        self, experiment: Experiment, text: str, timeout: float = 60, *, buttons: Sequence[Any] = ()
    ) -> str | None:
        return self._on_loop(lambda: self.post_to_thread(experiment, text, buttons=buttons), timeout)

    def start_blocking(self, experiment_id: str, details: str, timeout: float = 60) -> str | None:
        return self._on_loop(lambda: self.start(experiment_id, details=details), timeout)

    def finish_parent_blocking(self, experiment: Experiment, text: str, timeout: float = 60) -> bool:
        return self._on_loop(lambda: self.finish_parent(experiment, text), timeout)

    def _on_loop(self, make: Callable[[], Coroutine[Any, Any, T]], timeout: float) -> T:
        # The loop first: a coroutine made before finding there is no loop is never awaited.
        loop = self.require_loop()
        return asyncio.run_coroutine_threadsafe(make(), loop).result(timeout)

    def load(self, experiment_id: str) -> Experiment | None:
        return self._load(experiment_id)

    def require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("Threads was built without the app's event loop; call the async methods")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            # Waiting here for the loop we block would never end.
            raise RuntimeError("the blocking forms are for other threads; await the async methods instead")
        return self._loop

    def _load(self, experiment_id: str) -> Experiment | None:
        with self.store.read() as session:
            try:
                return get_experiment(session=session, experiment_id=experiment_id)
            except ExperimentNotFound:
                return None

    async def _update(self, experiment: Experiment, blocks: list[dict[str, Any]]) -> bool:
        if not experiment.channel or not experiment.thread_ts:
            return False
        response = await self.call(
            "chat.update",
            channel=experiment.channel,
            ts=experiment.thread_ts,
            text=render.fault_parent_text(experiment),
            blocks=blocks,
        )
        return response is not None

    async def call(self, method: str, **kwargs: Any) -> Any:
        """One Web API call; None (logged, counted) when Slack fails after the retries."""
        try:
            return await self.client.api_call(method, json=kwargs)
        except SLACK_FAILURES as exc:
            log.error("Slack %s failed for channel %s: %s", method, kwargs.get("channel"), exc)
            self._on_failure(method)
            return None


class SlackNotifier:
    """The experiment lifecycle's notifier (bot.lifecycle.notify.Notifier) in Slack: experiment
    events go to the fault's thread, a final one also redraws the parent; channel messages may
    carry buttons. Called from the lifecycle's worker threads, never from the event loop.
    """

    def __init__(self, threads: Threads, *, timeout: float = 60.0) -> None:
        self._threads = threads
        self._timeout = timeout

    def experiment_event(
        self, experiment: Experiment, text: str, *, final: bool = False, buttons: Sequence[Any] = ()
    ) -> None:
        # The caller's copy may predate its own last change (ended, extended): draw what is stored.
        current = self._threads.load(experiment.id) or experiment
        self._threads.post_to_thread_blocking(current, text, self._timeout, buttons=buttons)
        if final:
            self._threads.finish_parent_blocking(current, text, self._timeout)

    def experiment_files(self, experiment: Experiment, attachments: Sequence[Attachment]) -> None:
        current = self._threads.load(experiment.id) or experiment
        self._threads.upload_blocking(current, *attachments, timeout=self._timeout)

    def experiment_started(self, experiment: Experiment, text: str) -> None:
        """As for a fault started by a slash command: a parent with Stop / Extend, details inside."""
        self._threads.start_blocking(experiment.id, text, self._timeout)

    def channel_message(self, channel: str, text: str, *, buttons: Sequence[Any] = ()) -> None:
        blocks: list[dict[str, Any]] = [
            render.section(chunk) for chunk in render.chunks([render.escape(t) for t in text.splitlines()])
        ][: render.MAX_BLOCKS - 1]
        if buttons:
            blocks.append({"type": "actions", "elements": [_button(b) for b in buttons][:25]})
        loop = self._threads.require_loop()
        coroutine = self._threads.call(
            "chat.postMessage", channel=channel, text=render.fallback_text_of(text), blocks=blocks
        )
        asyncio.run_coroutine_threadsafe(coroutine, loop).result(self._timeout)


def _button(button: Any) -> dict[str, Any]:
    """A Block Kit button from anything shaped like bot.lifecycle.notify.Button."""
    element: dict[str, Any] = {
        "type": "button",
        "action_id": button.action_id,
        "text": {"type": "plain_text", "text": button.text},
        "value": button.value,
    }
    if getattr(button, "style", None):
        element["style"] = button.style
    return element
