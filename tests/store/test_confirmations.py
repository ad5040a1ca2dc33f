"""Open confirmation questions and seen Slack deliveries, shared by every replica.

Both are races between replicas in production: two presses of one button, two sweepers, one
retry delivered to each replica. Each race runs here on real threads against SQLite and
PostgreSQL, and exactly one side must win.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from core.store import (
    Source,
    Store,
    claim_request_key,
    count_confirmations,
    get_confirmation,
    hold_confirmation,
    list_expired_confirmations,
    put_back_confirmation,
    set_confirmation_message,
    take_confirmation,
    take_expired_confirmations,
)
from core.store.models import PendingConfirmation

from .helpers import ALICE, NOW

T = TypeVar("T")
TOKEN = "tok-1"
QUESTION = {"text": "Run `fault clear all`?", "two_person": False}


def hold(store: Store, token: str = TOKEN, *, expires_in: timedelta = timedelta(minutes=5)) -> None:
    with store.write() as session:
        hold_confirmation(
            session=session,
            token=token,
            command="fault clear all",
            actor=ALICE,
            source=Source.SLACK,
            channel="C0CHAOS",
            question=QUESTION,
            expires_at=NOW + expires_in,
            response_url="https://hooks.slack.test/response/1",
            now=NOW,
        )


def take(store: Store, token: str = TOKEN) -> PendingConfirmation | None:
    with store.write() as session:
        return take_confirmation(session=session, token=token)


def race(count: int, work: Callable[[], T]) -> list[T]:
    """Run ``work`` on ``count`` threads released at once; their results, or the first error."""
    barrier = threading.Barrier(count)
    results: list[T] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            barrier.wait()
            result = work()
        except BaseException as error:  # re-raised below: a thread's exception is otherwise lost
            errors.append(error)
            return
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    assert len(results) == count
    return results


def test_a_held_question_reads_back_as_it_was_asked(store: Store) -> None:
    hold(store)
    with store.read() as session:
        held = get_confirmation(session=session, token="tok-1")
        assert held is not None
        assert (held.command, held.actor_user, held.actor_team, held.actor_name) == (
            "fault clear all",
            ALICE.user_id,
            ALICE.team_id,
            ALICE.display_name,
        )
        assert (held.source, held.channel, held.question) == ("slack", "C0CHAOS", QUESTION)
        assert (held.expires_at, held.created_at) == (NOW + timedelta(minutes=5), NOW)
        assert held.response_url == "https://hooks.slack.test/response/1"
        assert held.message_ts is None
        assert count_confirmations(session=session) == 1


def test_take_answers_once_and_put_back_reopens_it_unchanged(store: Store) -> None:
    hold(store)
    with store.write() as session:
        assert set_confirmation_message(session=session, token="tok-1", message_ts="1700000000.000100")
    taken = take(store)
    assert taken is not None and taken.message_ts == "1700000000.000100"
    assert take(store) is None
    with store.write() as session:
        assert not set_confirmation_message(session=session, token="tok-1", message_ts="1.2")
        put_back_confirmation(session=session, confirmation=taken)
    again = take(store)
    assert again is not None
    assert (again.expires_at, again.message_ts, again.question) == (
        taken.expires_at,
        "1700000000.000100",
        QUESTION,
    )


def test_two_presses_at_once_exactly_one_gets_the_question(store: Store) -> None:
    for round_ in range(5):
        hold(store, f"tok-{round_}")
        taken = race(2, functools.partial(take, store, f"tok-{round_}"))
        assert sorted(t is not None for t in taken) == [False, True], round_


def test_a_press_while_another_holds_the_row_waits_and_finds_it_gone(store: Store) -> None:
    """The first taker keeps its transaction open; the second must wait for it, not read the row
    as still there (what a SELECT-then-DELETE without a lock would do)."""
    hold(store)
    first_took = threading.Event()
    second: list[PendingConfirmation | None] = []

    def second_press() -> None:
        first_took.wait(10)
        second.append(take(store))

    thread = threading.Thread(target=second_press)
    thread.start()
    with store.write() as session:
        first = take_confirmation(session=session, token="tok-1")
        first_took.set()
        # Give the second press time to reach the database and block there.
        thread.join(timeout=0.3)
        assert thread.is_alive(), "the second take did not wait for the first to commit"
    thread.join(timeout=20)
    assert first is not None and second == [None]


def test_expired_questions_are_taken_by_exactly_one_of_two_sweepers(store: Store) -> None:
    hold(store, "old-1", expires_in=timedelta(seconds=-5))
    hold(store, "old-2", expires_in=timedelta(seconds=-1))
    hold(store, "fresh", expires_in=timedelta(minutes=5))
    with store.read() as session:
        listed = list_expired_confirmations(session=session, now=NOW)
    assert [held.token for held in listed] == ["old-1", "old-2"]

    def sweep() -> list[str]:
        with store.write() as session:
            return [held.token for held in take_expired_confirmations(session=session, now=NOW)]

    swept = race(2, sweep)
    assert sorted(swept, key=len) == [[], ["old-1", "old-2"]]
    with store.read() as session:
        assert get_confirmation(session=session, token="fresh") is not None
        assert count_confirmations(session=session) == 1


def claim(store: Store, key: str, *, at: timedelta = timedelta(0), ttl: float = 3600) -> bool:
    with store.write() as session:
        return claim_request_key(session=session, key=key, now=NOW + at, ttl=timedelta(seconds=ttl))


def test_a_request_key_is_claimed_once_until_it_is_pruned(store: Store) -> None:
    assert claim(store, "T0TEST:trigger_id:1")
    assert not claim(store, "T0TEST:trigger_id:1", at=timedelta(minutes=59))
    assert claim(store, "T0TEST:trigger_id:2")
    # Older than the ttl: forgotten, so the key counts as new again.
    assert claim(store, "T0TEST:trigger_id:1", at=timedelta(minutes=61))


def test_a_long_key_is_stored_hashed_and_still_deduplicated(store: Store) -> None:
    key = "body:" + "x" * 1000
    assert claim(store, key)
    assert not claim(store, key)
    assert claim(store, key[:-1] + "y")


def test_the_same_delivery_on_two_replicas_at_once_is_claimed_once(store: Store) -> None:
    for round_ in range(5):
        claimed = race(2, functools.partial(claim, store, f"T0TEST:event_id:Ev{round_}"))
        assert sorted(claimed) == [False, True], round_
