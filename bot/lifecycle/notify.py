"""Telling people what the lifecycle did: the `Notifier` protocol and two plain implementations.

The lifecycle never talks to Slack itself. It hands text to a `Notifier`: into an experiment's
thread (`experiment_event`; ``final=True`` also updates the thread's parent message, which shows
the experiment's state) or into a channel (`channel_message`, with buttons for schedule reminders).
The Slack front plugs in its own implementation; `LogNotifier` serves the standalone CLI and
`RecordingNotifier` the tests.

A notifier failing (Slack down, rate limited) must never stop a fault from being reverted, so the
lifecycle calls notifiers through `deliver`, which logs and swallows their errors.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from core.store import Experiment
from handlers.reply import Attachment

log = logging.getLogger(__name__)

# Action ids of the schedule reminder's buttons; the Slack front maps them to
# bot.lifecycle.schedules.postpone / skip_next / cancel. The value is "<schedule id>@<run time>".
POSTPONE_ACTION = "meshbot_schedule_postpone"
SKIP_ACTION = "meshbot_schedule_skip"
CANCEL_ACTION = "meshbot_schedule_cancel"
# Action ids of a running experiment's buttons (its thread's parent and its reminders); the value
# is the experiment id. The Slack front runs `fault clear <id>` / `fault extend <id> 10m`.
STOP_ACTION = "mesh_fault_stop"
EXTEND_ACTION = "mesh_fault_extend"


@dataclass(frozen=True)
class Button:
    text: str
    action_id: str
    value: str
    style: Literal["primary", "danger"] | None = None


class Notifier(Protocol):
    def experiment_event(
        self, experiment: Experiment, text: str, *, final: bool = False, buttons: Sequence[Button] = ()
    ) -> None:
        """Post ``text`` into the experiment's thread; ``final`` also updates the parent message."""

    def experiment_started(self, experiment: Experiment, text: str) -> None:
        """An experiment started without a person in a chat (a schedule ran it): open its thread."""

    def experiment_files(self, experiment: Experiment, attachments: Sequence[Attachment]) -> None:
        """Share images (a report card's chart) in the experiment's thread."""

    def channel_message(self, channel: str, text: str, *, buttons: Sequence[Button] = ()) -> None:
        """Post ``text`` to a channel, with optional buttons."""


def deliver(what: str, send: Callable[[], None]) -> None:
    """Call a notifier; a failure is logged, never raised (the revert it reports already happened)."""
    try:
        send()
    except Exception:
        log.exception("could not deliver the notification about %s", what)


class BackgroundNotifier:
    """Hands notifications to another notifier from a thread of its own, in order.

    Slack allows about one message a second per channel and the Slack notifier waits for each
    call; five hundred faults expiring together must not hold the workers that revert them. So the
    lifecycle's workers only enqueue here, and never wait for Slack.
    """

    def __init__(self, notifier: Notifier, *, name: str = "notifier") -> None:
        self.notifier = notifier
        self._queue: queue.Queue[tuple[str, Callable[[], None]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._drain, name=name, daemon=True)
        self._thread.start()

    def experiment_event(
        self, experiment: Experiment, text: str, *, final: bool = False, buttons: Sequence[Button] = ()
    ) -> None:
        notifier = self.notifier
        self._queue.put(
            (experiment.id, lambda: notifier.experiment_event(experiment, text, final=final, buttons=buttons))
        )

    def experiment_started(self, experiment: Experiment, text: str) -> None:
        notifier = self.notifier
        self._queue.put((experiment.id, lambda: notifier.experiment_started(experiment, text)))

    def experiment_files(self, experiment: Experiment, attachments: Sequence[Attachment]) -> None:
        notifier = self.notifier
        self._queue.put((experiment.id, lambda: notifier.experiment_files(experiment, attachments)))

    def channel_message(self, channel: str, text: str, *, buttons: Sequence[Button] = ()) -> None:
        notifier = self.notifier
        self._queue.put((channel, lambda: notifier.channel_message(channel, text, buttons=buttons)))

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (for at most ``timeout`` seconds), then stop."""
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("stopped with %d notification(s) undelivered", self._queue.qsize())

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            what, send = item
            deliver(what, send)


class LogNotifier:
    """Writes notifications to the log: for `meshbot lifecycle` run without Slack."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("meshbot.notify")

    def experiment_event(
        self, experiment: Experiment, text: str, *, final: bool = False, buttons: Sequence[Button] = ()
    ) -> None:
        where = f"{experiment.channel or '-'}/{experiment.thread_ts or '-'}"
        self._log.info("[%s %s%s] %s", experiment.id, where, " final" if final else "", text)

    def experiment_started(self, experiment: Experiment, text: str) -> None:
        self._log.info("[%s %s started] %s", experiment.id, experiment.channel or "-", text)

    def experiment_files(self, experiment: Experiment, attachments: Sequence[Attachment]) -> None:
        self._log.info(
            "[%s] not shown without Slack: %s", experiment.id, ", ".join(a.title for a in attachments)
        )

    def channel_message(self, channel: str, text: str, *, buttons: Sequence[Button] = ()) -> None:
        labels = f" [{' | '.join(b.text for b in buttons)}]" if buttons else ""
        self._log.info("[%s] %s%s", channel, text, labels)


@dataclass(frozen=True)
class Note:
    """One notification as a RecordingNotifier saw it."""

    kind: Literal["experiment", "started", "channel", "files"]
    text: str
    channel: str | None = None
    experiment_id: str | None = None
    final: bool = False
    buttons: tuple[Button, ...] = ()
    at: float = 0.0  # time.monotonic() when received
    attachments: tuple[Attachment, ...] = ()


@dataclass
class RecordingNotifier:
    """Keeps every notification, for tests; ``wait_for`` blocks until one matches."""

    notes: list[Note] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def experiment_event(
        self, experiment: Experiment, text: str, *, final: bool = False, buttons: Sequence[Button] = ()
    ) -> None:
        self._add(
            Note(
                "experiment",
                text,
                channel=experiment.channel,
                experiment_id=experiment.id,
                final=final,
                buttons=tuple(buttons),
                at=time.monotonic(),
            )
        )

    def experiment_started(self, experiment: Experiment, text: str) -> None:
        self._add(
            Note(
                "started", text, channel=experiment.channel, experiment_id=experiment.id, at=time.monotonic()
            )
        )

    def experiment_files(self, experiment: Experiment, attachments: Sequence[Attachment]) -> None:
        self._add(
            Note(
                "files",
                ", ".join(a.title for a in attachments),
                channel=experiment.channel,
                experiment_id=experiment.id,
                at=time.monotonic(),
                attachments=tuple(attachments),
            )
        )

    def channel_message(self, channel: str, text: str, *, buttons: Sequence[Button] = ()) -> None:
        self._add(Note("channel", text, channel=channel, buttons=tuple(buttons), at=time.monotonic()))

    def _add(self, note: Note) -> None:
        with self._changed:
            self.notes.append(note)
            self._changed.notify_all()

    def matching(self, predicate: Callable[[Note], bool]) -> list[Note]:
        with self._changed:
            return [n for n in self.notes if predicate(n)]

    def wait_for(self, predicate: Callable[[Note], bool], timeout: float = 5.0) -> Note:
        """The first note matching ``predicate``, waiting up to ``timeout`` seconds for it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for note in self.notes:
                    if predicate(note):
                        return note
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = "\n".join(
                        f"  {n.kind} {n.experiment_id or n.channel}: {n.text}" for n in self.notes
                    )
                    raise TimeoutError(f"no matching notification within {timeout}s; got:\n{seen}")
                self._changed.wait(left)
