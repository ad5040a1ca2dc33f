"""``meshbot run "fault …" --wait``: the CLI keeps the promise that the fault ends by itself.

For when no meshbot lifecycle runs against the cluster: the process stays until the fault's
end (following extensions made meanwhile), then ends it through the same path as expiry, with
the same audit row; Ctrl-C or SIGTERM ends it at once as a clear. A fault someone else ended
meanwhile (a clear from Slack, a reaper) lets the process go quietly.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import FrameType

from bot.pipeline import Pipeline
from core.durations import human_duration
from core.store import Actor, EndReason, ExperimentNotFound, ExperimentState, Source, get_experiment
from domain import ending
from mesh.errors import MeshError

# How often the remaining time is printed, and the store re-read for extensions or a clear.
PROGRESS_EVERY = timedelta(seconds=30)
POLL_SECONDS = 1.0


@contextmanager
def interruptible() -> Iterator[threading.Event]:
    """Ctrl-C and SIGTERM set the event instead of killing the process. Installed before the
    fault is applied: a signal that arrives while it is applied must still end in a clear."""
    stop = threading.Event()

    def interrupted(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_and_end(
    pipeline: Pipeline,
    experiment_id: str,
    actor: Actor,
    say: Callable[[str], None],
    stop: threading.Event,
) -> bool:
    """Wait for the experiment's end and end it (at once when ``stop`` is set); True when the
    fault is gone from the cluster. Run it inside ``interruptible()``."""
    last_said = None
    while True:
        with pipeline.store.read() as session:
            try:
                experiment = get_experiment(session=session, experiment_id=experiment_id)
            except ExperimentNotFound:
                return True
        if experiment.state != ExperimentState.ACTIVE or experiment.expires_at is None:
            say(f"{experiment_id} is {experiment.state} ({experiment.end_reason or 'no reason'}): done.")
            return True
        left = experiment.expires_at - pipeline.clock()
        if stop.is_set():
            say(f"Interrupted: clearing {experiment_id} now.")
            reply = pipeline.run(f"fault clear {experiment_id}", actor=actor, source=Source.CLI)
            say(reply.text)
            return reply.ok
        if left <= timedelta(0):
            return _end_on_time(pipeline, experiment_id, experiment.namespace, actor, say)
        if last_said is None or last_said - left >= PROGRESS_EVERY:
            say(
                f"Waiting for {experiment_id} to end ({human_duration(_whole_seconds(left))} left; "
                "Ctrl-C clears it now)."
            )
            last_said = left
        stop.wait(min(POLL_SECONDS, left.total_seconds()))


def _end_on_time(
    pipeline: Pipeline, experiment_id: str, namespace: str, actor: Actor, say: Callable[[str], None]
) -> bool:
    with pipeline.store.read() as session:
        experiment = get_experiment(session=session, experiment_id=experiment_id)
    try:
        ended = ending.end(
            pipeline.kube,
            pipeline.store,
            experiment_id,
            namespace=namespace,
            vs_names=ending.vs_names(experiment),
            reason=EndReason.EXPIRED,
            by=actor,
            now=pipeline.clock(),
            accept=frozenset({ending.Verdict.CLAIMED, ending.Verdict.ENDING}),
            due=pipeline.clock(),
            verb="expire",
            message=lambda removed: f"{experiment_id} expired and was ended by the waiting CLI: {removed}",
        )
    except ending.PermanentError as exc:
        say(f"{experiment_id} was ended elsewhere: {exc}")
        return True
    except (ending.TemporaryError, MeshError) as exc:
        say(f'Could not end {experiment_id}: {exc}. Run `meshbot run "fault clear {experiment_id}"`.')
        return False
    say(f"{experiment_id} ended on time: {ended.removed}.")
    return True


def _whole_seconds(delta: timedelta) -> timedelta:
    return timedelta(seconds=max(1, round(delta.total_seconds())))
