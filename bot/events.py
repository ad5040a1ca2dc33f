"""What happened to experiments, told to whoever listens: the Slack front keeps fault threads.

Verbs put ``ExperimentEvent``s on their Reply (started, extended, ended); the pipeline's event
step publishes them here with who did it and from where, after the command is audited. A
subscriber runs in the thread that ran the command, so it may block (post to Slack and wait);
one that fails is logged and never changes the command's outcome: the cluster and the store
already hold what happened.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from core.values import Actor, Source
from handlers.reply import ExperimentEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Published:
    event: ExperimentEvent
    actor: Actor
    source: Source
    channel: str | None


Subscriber = Callable[[Published], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Listen from now on; returns the call that stops listening (an app's shutdown)."""
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, published: Published) -> None:
        with self._lock:
            listening = list(self._subscribers)
        for subscriber in listening:
            try:
                subscriber(published)
            except Exception:
                log.exception(
                    "a subscriber failed on %s of %s", published.event.kind, published.event.experiment_id
                )
