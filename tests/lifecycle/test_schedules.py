"""Scheduled faults: validated when typed, reminded before each run, run through the pipeline as
their owner, postponed / skipped / cancelled from the reminder's buttons, and missed runs
reported rather than fired late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.authz import RoleAuthorizer
from bot.confirm import needs_confirmation
from bot.lifecycle.notify import CANCEL_ACTION, POSTPONE_ACTION, SKIP_ACTION
from bot.pipeline import Pipeline, Unconfirmed
from core.policy import FaultLimits, Policy, RoleBinding, RoleName
from core.store import (
    Actor,
    AuditEvent,
    AuditQuery,
    Schedule,
    Source,
    create_schedule,
    get_schedule,
    list_experiments,
    list_schedules,
    query_events,
)
from core.values import Target
from domain.schedules import postpone, skip_next
from handlers.skip import USAGE as SKIP_USAGE
from handlers.skip import parse_run_reference

from .conftest import ALICE, ALICE_OPERATES, CHANNEL, NS, Env, wait_for

# What the schedules of these tests act on, as their verbs would find it.
TARGET = Target(cluster="default", namespace=NS, service="web-svc")

BOB = Actor(user_id="U0BOB", team_id="T0001", display_name="bob")


def _schedule(env: Env, schedule_id: str) -> Schedule:
    with env.store.read() as session:
        return get_schedule(session=session, schedule_id=schedule_id)


def _created_id(reply_text: str) -> str:
    return reply_text.split()[1].rstrip(":")


def _events(env: Env, verb: str) -> list[AuditEvent]:
    with env.store.read() as session:
        return list(query_events(session=session, query=AuditQuery(verb=verb)).events)


def _job_time(env: Env, job_id: str) -> datetime | None:
    scheduler = env.lifecycles[-1].rt.scheduler
    job = scheduler.get_job(job_id) if scheduler else None
    return job.next_run_time if job else None


def _armed_at(env: Env, job_id: str, expected: datetime) -> bool:
    """Whether the job fires at ``expected`` (wall clock), give or take the clock offset's jitter."""
    fires = _job_time(env, job_id)
    return fires is not None and abs((fires - expected).total_seconds()) < 0.1


def _clock_before_next_minute(seconds: float) -> tuple[datetime, timedelta]:
    """A clock offset that puts "now" ``seconds`` before a whole minute, and that minute: a cron
    run is then due in ``seconds`` of real time."""
    real = datetime.now(UTC)
    minute = (real + timedelta(minutes=1)).replace(second=0, microsecond=0)
    return minute, minute - timedelta(seconds=seconds) - real


# ---------------------------------------------------------------------- the verbs


@pytest.mark.parametrize(
    ("command", "error"),
    [
        ('schedule "fault delay 3s web-svc for 15m" every "0 25 * * *"', "cannot read cron expression"),
        ('schedule "fault delay 3s web-svc" every "0 14 * * 2" tz=Mars/Olympus', "unknown time zone"),
        ('schedule "fault list" at 14:00', "schedule runs a fault injection"),
        ('schedule "fault delay 3 web-svc" at 14:00', "the scheduled command"),
        ('schedule "fault delay 3s web-svc" at noonish', "cannot read the time"),
        ('schedule "fault delay 3s web-svc" tomorrow', "say when"),
        ('schedule "fault delay 3s web-svc" at 14:00 remind=soon', "reminder lead"),
        ("unschedule exp-1234", "not a schedule id"),
    ],
)
def test_malformed_schedules_are_refused_with_what_is_wrong(env: Env, command: str, error: str) -> None:
    reply = env.run(command)
    assert reply.outcome == "refused" and reply.usage_error
    assert error in reply.text


def test_schedule_fixes_the_namespace_and_refuses_the_past_and_the_protected(env: Env) -> None:
    env.policy.default_namespace = NS
    reply = env.run('schedule "fault delay 3s web-svc for 15m" every "0 14 * * 2" tz=Europe/Berlin')
    assert reply.ok, reply.text
    schedule = _schedule(env, _created_id(reply.text))
    assert schedule.command == f"fault delay 3s web-svc for 15m -n {NS}"
    assert (schedule.cron, schedule.timezone, schedule.channel) == ("0 14 * * 2", "Europe/Berlin", CHANNEL)
    assert schedule.created_by_user == ALICE.user_id
    assert "CET" in reply.text or "CEST" in reply.text

    past = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    assert "already passed" in env.run(f'schedule "fault delay 3s web-svc" at {past}').text
    assert "protected" in env.run('schedule "fault delay 3s istiod.istio-system" at +1h').text
    assert "channel" in env.run('schedule "fault delay 3s web-svc" at +1h', channel=None).text


def test_schedules_pause_resume_unschedule(env: Env) -> None:
    made = env.run(f'schedule "fault abort 500 web-svc.{NS} for 1m" every "30 9 * * 1-5" remind=15m')
    schedule_id = _created_id(made.text)
    once = _created_id(env.run(f'schedule "fault delay 1s web-svc.{NS}" at +2h').text)

    listing = env.run("schedules")
    assert listing.ok and schedule_id in listing.text and once in listing.text
    assert "reminder 15m before" in listing.text

    assert env.run(f"pause {schedule_id}").ok
    assert "paused" in env.run("schedules").text
    assert env.run(f"pause {schedule_id}").outcome == "refused"
    assert env.run(f"resume {schedule_id}").ok
    assert _schedule(env, schedule_id).enabled
    assert env.run(f"unschedule {once}").ok
    assert env.run(f"unschedule {once}").outcome == "refused"
    assert "No schedules in this channel" in env.run("schedules", channel="C0OTHER").text
    assert schedule_id in env.run("schedules all", channel="C0OTHER").text


# ---------------------------------------------------------------------- running


def test_a_schedule_at_a_time_reminds_then_runs_as_its_owner(env: Env) -> None:
    env.lifecycle()
    made = env.run(f'schedule "fault abort 500 web-svc.{NS} for 1s" at +2s remind=1s')
    assert made.ok, made.text
    schedule_id = _created_id(made.text)

    reminder = env.notifier.wait_for(lambda n: n.kind == "channel" and "🗓" in n.text, timeout=3.0)
    assert reminder.channel == CHANNEL and schedule_id in reminder.text
    assert [b.action_id for b in reminder.buttons] == [POSTPONE_ACTION, SKIP_ACTION, CANCEL_ACTION]
    assert [b.text for b in reminder.buttons] == ["Postpone 1 h", "Skip this run", "Cancel schedule"]
    assert parse_run_reference(reminder.buttons[0].value, SKIP_USAGE)[0] == schedule_id

    # The experiment opens its own thread, as one started from the channel would.
    ran = env.notifier.wait_for(lambda n: n.kind == "started" and "▶" in n.text, timeout=4.0)
    assert schedule_id in ran.text and "Experiment exp-" in ran.text
    with env.store.read() as session:
        (experiment,) = list_experiments(session=session, since=datetime.now(UTC) - timedelta(minutes=1))
    assert (ran.experiment_id, ran.channel) == (experiment.id, CHANNEL)
    assert (experiment.created_by_user, experiment.channel) == (ALICE.user_id, CHANNEL)
    (event,) = [e for e in _events(env, "fault") if e.source == "scheduler"]
    assert (event.actor_user_id, event.outcome) == (ALICE.user_id, "ok")
    assert not _schedule(env, schedule_id).enabled, "a one-off schedule is done once it ran"
    env.wait_gone(experiment.id, within=2.0)


def test_a_cron_schedule_runs_on_the_minute(env: Env) -> None:
    minute, offset = _clock_before_next_minute(1.5)
    env.clock = lambda: datetime.now(UTC) + offset
    env.lifecycle()
    made = env.run(f'schedule "fault delay 2s web-svc.{NS} for 1s" every "* * * * *" remind=1s')
    schedule_id = _created_id(made.text)

    env.notifier.wait_for(lambda n: "🗓" in n.text and schedule_id in n.text, timeout=3.0)
    ran = env.notifier.wait_for(lambda n: "▶" in n.text and schedule_id in n.text, timeout=4.0)
    assert "delay 2s" in ran.text
    (event,) = _events(env, "schedule run")
    assert event.command.endswith(minute.strftime("%Y-%m-%dT%H:%M:%SZ"))
    wait_for(
        lambda: _armed_at(env, f"schedule:{schedule_id}", minute + timedelta(minutes=1) - offset),
        2.0,
        "the next minute armed",
    )


def test_skip_from_the_reminder_skips_that_run_only(env: Env) -> None:
    minute, offset = _clock_before_next_minute(1.5)
    env.clock = lambda: datetime.now(UTC) + offset
    env.lifecycle()
    schedule_id = _created_id(
        env.run(f'schedule "fault delay 2s web-svc.{NS} for 1s" every "* * * * *" remind=1s').text
    )
    reminder = env.notifier.wait_for(lambda n: "🗓" in n.text, timeout=3.0)

    # The button's value is what the skip verb reads after `skip`.
    button_id, run = parse_run_reference(reminder.buttons[1].value, SKIP_USAGE)
    text = skip_next(button_id, store=env.store, actor=BOB, target=TARGET, run=run, now=env.clock())
    assert text.startswith("Skipped the") and run == minute

    wait_for(
        lambda: _armed_at(env, f"schedule:{schedule_id}", minute + timedelta(minutes=1) - offset),
        4.0,
        "the run after the skipped one armed",
    )
    env.flush(env.lifecycles[-1])
    assert not env.notifier.matching(lambda n: "▶" in n.text), "the skipped run did not run"
    assert not _events(env, "schedule run")
    (skip,) = _events(env, "schedule skip")
    assert (skip.actor_user_id, skip.source) == (BOB.user_id, "slack")


def test_postpone_and_cancel_from_the_reminder(env: Env) -> None:
    env.lifecycle()
    once = _created_id(env.run(f'schedule "fault delay 1s web-svc.{NS}" at +1h').text)
    weekly = _created_id(env.run(f'schedule "fault delay 1s web-svc.{NS}" every "0 14 * * 2"').text)
    run_at = _schedule(env, once).run_at
    assert run_at is not None
    wait_for(lambda: _job_time(env, f"schedule:{once}") == run_at, 2.0, "the one-off run armed")

    text = postpone(once, timedelta(hours=1), store=env.store, actor=BOB, target=TARGET)
    assert text.startswith(f"Postponed {once} by 1h")
    assert _schedule(env, once).run_at == run_at + timedelta(hours=1)
    wait_for(lambda: _job_time(env, f"schedule:{once}") == run_at + timedelta(hours=1), 2.0, "re-armed later")

    moved = postpone(weekly, store=env.store, actor=BOB, target=TARGET)
    assert "later runs stay as scheduled" in moved
    with env.store.read() as session:
        children = [s for s in list_schedules(session=session) if s.id not in (once, weekly)]
    (child,) = children
    assert child.run_at is not None and child.command == _schedule(env, weekly).command
    assert child.created_by_user == ALICE.user_id, "the moved run still runs as the schedule's owner"
    assert len(_events(env, "schedule postpone")) == 2

    assert env.run(f"unschedule {once}").text.startswith(f"Deleted schedule {once}")
    wait_for(lambda: _job_time(env, f"schedule:{once}") is None, 2.0, "its job gone")
    assert env.run(f"unschedule {once}").text == f"there is no schedule {once}"


def test_a_risky_fault_confirmed_when_scheduled_runs_without_asking_again(env: Env) -> None:
    env.policy = Policy(
        faults=FaultLimits(max_concurrent_per_namespace=50),
        production_namespaces=[NS],
        roles=ALICE_OPERATES,
    )
    env._pipeline = Pipeline(store=env.store, kube=env.kube, policy=env.policy, confirm=needs_confirmation)
    env.lifecycle()
    text = f'schedule "fault abort 500 web-svc.{NS} for 1s" at +1s remind=0s'
    asked = env.run(text)
    assert isinstance(asked, Unconfirmed), "a production fault asks when it is scheduled"
    made = env.pipeline.run(text, actor=ALICE, source=Source.SLACK, channel=CHANNEL, confirmed_by=ALICE)
    assert made.ok and not isinstance(made, Unconfirmed), made.text

    ran = env.notifier.wait_for(lambda n: "▶" in n.text or "✖" in n.text, timeout=4.0)
    assert "▶" in ran.text, ran.text


def test_roles_are_checked_again_at_run_time_as_the_owner(env: Env) -> None:
    operator: dict[RoleName, list[RoleBinding]] = {
        "operator": [RoleBinding(users=[ALICE.user_id], namespaces=[NS])]
    }
    env.policy = Policy(faults=FaultLimits(max_concurrent_per_namespace=50), roles=operator)
    env._pipeline = Pipeline(store=env.store, kube=env.kube, policy=env.policy, authorize=RoleAuthorizer())
    env.lifecycle()
    made = env.run(f'schedule "fault abort 500 web-svc.{NS} for 1s" at +1s remind=0s')
    assert made.ok, made.text
    env.pipeline.policy = Policy(faults=FaultLimits(max_concurrent_per_namespace=50))  # alice loses the role

    note = env.notifier.wait_for(lambda n: "▶" in n.text or "✖" in n.text, timeout=4.0)
    assert "could not run" in note.text and "operator role" in note.text
    with env.store.read() as session:
        assert not list_experiments(session=session, since=datetime.now(UTC) - timedelta(minutes=1))
    (denied,) = [e for e in _events(env, "fault") if e.source == "scheduler"]
    assert (denied.actor_user_id, denied.outcome) == (ALICE.user_id, "denied")


def test_runs_missed_while_down_are_reported_once_not_run(env: Env) -> None:
    now = datetime.now(UTC)
    command = f"fault abort 500 web-svc for 1m -n {NS}"
    with env.store.write() as session:
        once = create_schedule(
            session=session,
            command=command,
            channel=CHANNEL,
            created_by=ALICE,
            run_at=now - timedelta(minutes=10),
            now=now - timedelta(minutes=20),
        ).id
        every = create_schedule(
            session=session,
            command=command,
            channel=CHANNEL,
            created_by=ALICE,
            cron="*/5 * * * *",
            now=now - timedelta(hours=1),
        ).id
    env.lifecycle()

    once_note = env.notifier.wait_for(lambda n: "Missed run" in n.text and once in n.text, timeout=3.0)
    every_note = env.notifier.wait_for(lambda n: "Missed" in n.text and every in n.text, timeout=3.0)
    assert "were not run late" in once_note.text
    assert "Missed 12 runs" in every_note.text or "Missed 11 runs" in every_note.text
    assert not _schedule(env, once).enabled
    with env.store.read() as session:
        assert not list_experiments(session=session, since=now - timedelta(hours=2))
    assert len(_events(env, "schedule missed")) == 2

    # Another leader later: the misses are on record, so they are not reported again.
    env.lifecycles[-1].stop()
    env.lifecycle()
    wait_for(lambda: _job_time(env, f"schedule:{every}"), 2.0, "the new leader to plan the schedule")
    env.flush(env.lifecycles[-1])
    assert len(env.notifier.matching(lambda n: "Missed" in n.text)) == 2


def test_a_run_is_authorized_as_its_owner_even_through_a_pipeline_that_checks_nobody(env: Env) -> None:
    # The service hands the lifecycle its base pipeline, which authorizes nobody: the run must
    # still be checked as its owner under the policy of the moment.
    env._pipeline = Pipeline(store=env.store, kube=env.kube, policy=env.policy)
    env.lifecycle()
    made = env.run(f'schedule "fault abort 500 web-svc.{NS} for 1s" at +1s remind=0s')
    assert made.ok, made.text
    env.pipeline.policy = Policy(faults=FaultLimits(max_concurrent_per_namespace=50))  # no roles now

    note = env.notifier.wait_for(lambda n: "▶" in n.text or "✖" in n.text, timeout=4.0)
    assert "could not run" in note.text and "operator role" in note.text
    (denied,) = [e for e in _events(env, "fault") if e.source == "scheduler"]
    assert (denied.actor_user_id, denied.outcome) == (ALICE.user_id, "denied")


def test_a_schedule_made_from_the_cli_runs_as_the_local_administrator_it_was(env: Env) -> None:
    env.pipeline.policy = Policy(faults=FaultLimits(max_concurrent_per_namespace=50))  # no roles at all
    env.lifecycle()
    cli = Actor.cli("root")
    made = env.run(f'schedule "fault abort 500 web-svc.{NS} for 1s" at +1s remind=0s', actor=cli)
    assert made.ok, made.text
    note = env.notifier.wait_for(lambda n: "▶" in n.text or "✖" in n.text, timeout=4.0)
    assert "▶" in note.text, note.text


def test_one_schedule_that_cannot_be_planned_never_stops_the_others_or_expiry(env: Env) -> None:
    # A row no check of today would let in (written before the bounds, or by hand): its
    # reminder lead overflows any date arithmetic.
    bad = _created_id(env.run(f'schedule "fault delay 1s web-svc.{NS} for 1s" at +1h').text)
    with env.store.write() as session:
        session.get(Schedule, bad).reminder_lead_seconds = 10**13  # type: ignore[union-attr]
    good = _created_id(env.run(f'schedule "fault delay 1s emoji-svc.{NS} for 1s" at +1s remind=0s').text)

    lifecycle = env.lifecycle()
    ran = env.notifier.wait_for(lambda n: "▶" in n.text or "✖" in n.text, timeout=5.0)
    assert good in ran.text and "▶" in ran.text, ran.text
    # The leader went on to arm its periodic work: expiry still runs.
    wait_for(lambda: lifecycle.rt.has_job("lifecycle:sync"), 2.0, "the periodic sync armed")
    wait_for(lambda: lifecycle.rt.has_job("lifecycle:reap"), 2.0, "the reaper armed")
    assert _job_time(env, f"schedule:{bad}") is None, "the bad schedule is left unarmed, not half-armed"
