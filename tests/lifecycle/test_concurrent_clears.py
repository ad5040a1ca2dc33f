"""Two people press the big red button at once: every fault ends once, and each reply (and its
audit row) counts only what that command cleared itself."""

from __future__ import annotations

import re
import threading

from core.store import AuditQuery, query_events
from core.values import Actor

from .conftest import ALICE, Env

BOB = Actor(user_id="U0BOB", team_id="T0001", display_name="bob")


def test_concurrent_clear_alls_record_what_each_really_cleared(env: Env) -> None:
    ids = [env.start_fault(service, "10m") for service in ("web-svc", "emoji-svc", "voting-svc", "web-svc")]
    replies: dict[str, str] = {}
    start = threading.Barrier(2)

    def clear(actor: Actor) -> None:
        start.wait()
        replies[actor.user_id] = env.run("fault clear all", actor=actor).text

    threads = [threading.Thread(target=clear, args=(who,)) for who in (ALICE, BOB)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    counted = 0
    for text in replies.values():
        first = text.splitlines()[0]
        found = re.fullmatch(r"Cleared (\d) of (\d) faults: .*", first)
        if found:
            counted += int(found.group(1))
        else:  # it saw one fault, or none left
            counted += 1 if first.startswith("✔") else 0
    assert counted == len(ids), replies
    assert all(not env.in_cluster(experiment_id) for experiment_id in ids)
    with env.store.read() as session:
        rows = query_events(session=session, query=AuditQuery(verb="fault")).events
    recorded = [row.message for row in rows if row.command == "fault clear all"]
    assert sorted(recorded) == sorted(text.splitlines()[0] for text in replies.values())
