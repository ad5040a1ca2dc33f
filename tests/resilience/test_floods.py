"""Floods: many people at once against one namespace, one service, one experiment. The concurrency
cap holds exactly, every command is audited once, each clear counts only what it cleared itself,
and a burst of Stop/Extend presses ends an experiment once, with one "ended" note in its thread."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bot.slack import render
from core.policy import FaultLimits, Policy
from core.store import AuditQuery, list_active, query_events
from core.values import Actor
from mesh.virtualservices import list_marked_faults
from tests.lifecycle.conftest import ALICE_OPERATES, NS, Env, wait_for
from tests.resilience.conftest import assert_chain_intact
from tests.resilience.figures import attempt
from tests.slack.conftest import SlackApp, SlackClient, audit_rows, buttons, experiment

CAP = 3
FLOOD = 16
PEOPLE = [Actor(user_id=f"U0P{n:02d}", team_id="T0001", display_name=f"p{n}") for n in range(FLOOD)]


def _fault_rows(env: Env) -> list[object]:
    with env.store.read() as session:
        return list(query_events(session=session, query=AuditQuery(verb="fault", limit=500)).events)


def test_a_flood_of_starts_on_one_service_is_capped_exactly_and_audited_once_each(env: Env) -> None:
    env.policy = Policy(
        faults=FaultLimits(max_concurrent_per_namespace=CAP),
        roles={"operator": [{"users": [p.user_id for p in PEOPLE]}]},  # type: ignore[list-item]
    )
    together = threading.Barrier(FLOOD)

    def start(person: Actor) -> tuple[bool, str]:
        together.wait(timeout=10)
        reply = env.run(f"fault abort 500 50% web-svc.{NS} for 10m", actor=person)
        return reply.ok, reply.text

    with attempt("floods"):
        with ThreadPoolExecutor(FLOOD) as pool:
            outcomes = list(pool.map(start, PEOPLE, timeout=60))
        started = [text for ok, text in outcomes if ok]
        assert 1 <= len(started) <= CAP, outcomes
        with env.store.read() as session:
            active = list_active(session=session)
        assert len(active) == len(started)
        # Live in the cluster exactly what the store says is active: nothing half-applied.
        assert all(env.in_cluster(e.id) for e in active)
        rows = _fault_rows(env)
        assert len(rows) == FLOOD, [(r.actor_user_id, r.outcome) for r in rows]  # type: ignore[attr-defined]
        assert sorted(r.actor_user_id for r in rows) == sorted(p.user_id for p in PEOPLE)  # type: ignore[attr-defined]
        assert sum(r.outcome == "ok" for r in rows) == len(started)  # type: ignore[attr-defined]
        assert_chain_intact(env.store)


def test_concurrent_clear_alls_end_every_fault_once_and_count_only_their_own(env: Env) -> None:
    env.policy = Policy(
        faults=FaultLimits(max_concurrent_per_namespace=50),
        roles={"admin": [{"users": [p.user_id for p in PEOPLE[:6]]}], **ALICE_OPERATES},  # type: ignore[dict-item]
    )
    services = ("web-svc", "emoji-svc", "voting-svc")
    for round_ in range(2):
        with attempt("floods"):
            ids = [env.start_fault(services[n % 3], "10m") for n in range(6)]
            clearers = PEOPLE[:6]
            together = threading.Barrier(len(clearers))

            def clear(person: Actor, together: threading.Barrier = together) -> str:
                together.wait(timeout=10)
                return str(env.run("fault clear all", actor=person).text)

            with ThreadPoolExecutor(len(clearers)) as pool:
                replies = list(pool.map(clear, clearers, timeout=60))
            counted = 0
            for text in replies:
                first = text.splitlines()[0]
                found = re.fullmatch(r"Cleared (\d+) of (\d+) faults: .*", first)
                if found:
                    counted += int(found.group(1))
                elif first.startswith("✔"):
                    counted += 1
            assert counted == len(ids), (round_, replies)
            assert not any(env.in_cluster(i) for i in ids)
            assert {env.experiment(i).state for i in ids} == {"ended"}
            # Each clear's audit row says what its reply said: no clear claims another's faults.
            recorded = [r.message for r in _fault_rows(env) if r.command == "fault clear all"]  # type: ignore[attr-defined]
            assert len(recorded) == len(clearers) * (round_ + 1)
    assert_chain_intact(env.store)


def test_a_burst_of_stop_and_extend_presses_ends_the_experiment_once(
    slack: SlackClient, slack_app: SlackApp
) -> None:
    with attempt("floods"):
        slack.command(f"fault delay 3s web-svc.{NS} for 5m")
        parent = slack.fake.wait_for_call("chat.postMessage", "Stop now")[0]
        slack.fake.wait_for_call("chat.postMessage", "VirtualServices")
        experiment_id = buttons(parent.blocks)[render.ACTION_STOP]
        rows_before = len(audit_rows(slack_app.store))
        presses = [render.ACTION_STOP, render.ACTION_EXTEND] * 6
        together = threading.Barrier(len(presses))

        def press(action: str) -> int:
            together.wait(timeout=10)
            return slack.press(action, experiment_id).response.status_code

        with ThreadPoolExecutor(len(presses)) as pool:
            statuses = list(pool.map(press, presses, timeout=60))
        assert all(status < 500 for status in statuses), statuses
        # Every press is answered and audited once (the Stops that lost the race as refusals).
        wait_for(
            lambda: len(audit_rows(slack_app.store)) - rows_before >= len(presses),
            15.0,
            "every press audited",
        )
        time.sleep(0.3)  # a duplicate row or note would arrive now; none may
        rows = audit_rows(slack_app.store)[rows_before:]
        assert len(rows) == len(presses), [(r.command, r.outcome) for r in rows]
        cleared = [r for r in rows if r.command == f"fault clear {experiment_id}" and r.outcome == "ok"]
        assert len(cleared) == 1, "\n".join(f"{r.id} {r.command} {r.outcome} {r.message}" for r in rows)
        # The Stops that lost say so, whatever moment they lost at: refused, "already ended".
        lost = [r for r in rows if r.command.startswith("fault clear") and r is not cleared[0]]
        assert all(r.outcome == "refused" and "already" in r.message for r in lost), "\n".join(
            f"{r.outcome} {r.message}" for r in lost
        )
        assert experiment(slack_app.store, experiment_id).state == "ended"
        thread_ts = experiment(slack_app.store, experiment_id).thread_ts
        ended_notes = [
            c
            for c in slack.fake.calls_to("chat.postMessage")
            if c.params.get("thread_ts") == thread_ts and "cleared (" in c.all_text()
        ]
        assert len(ended_notes) == 1, [c.all_text()[:120] for c in ended_notes]
        # Nothing of it is left live, whichever Extend landed before the Stop.
        assert not any(m.experiment_id == experiment_id for m in list_marked_faults(slack_app.pipeline.kube))
        assert_chain_intact(slack_app.store)
