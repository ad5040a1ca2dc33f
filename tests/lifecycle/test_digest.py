"""The daily digest per channel, and the store queries behind it and behind `status`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.lifecycle import DIGEST_JOB
from core.policy import DigestPolicy
from core.store import (
    ExperimentKind,
    create_experiment,
    list_experiments,
    list_failed,
    mark_failed,
)

from .conftest import ALICE, CHANNEL, NS, Env, wait_for


def test_the_digest_lists_the_days_experiments_the_active_ones_and_what_is_scheduled(env: Env) -> None:
    env.policy.digest = DigestPolicy(channels=[CHANNEL, "C0QUIET"], at="09:30", timezone="Europe/Berlin")
    lifecycle = env.lifecycle()
    done = env.start_fault("web-svc", "1s")
    running = env.start_fault("emoji-svc", "60s")
    env.run(f'schedule "fault delay 1s web-svc.{NS} for 5m" every "0 14 * * 2" tz=Europe/Berlin')
    env.wait_state(done, "ended")

    lifecycle.send_digests()
    env.flush(lifecycle)

    (note,) = env.notifier.matching(lambda n: "daily digest" in n.text)
    assert note.channel == CHANNEL, "a channel with nothing to report gets no message"
    assert f"{done} abort on web-svc.{NS} for 1s by alice — expired" in note.text
    assert f"{running} abort on emoji-svc.{NS} for 1m by alice — still active" in note.text
    assert "*Active now (1)*" in note.text
    assert "*Scheduled next*" in note.text and "fault delay 1s web-svc" in note.text
    wait_for(lambda: lifecycle.rt.scheduler and lifecycle.rt.scheduler.get_job(DIGEST_JOB), 2.0, "digest job")


def test_list_failed_and_list_experiments(env: Env) -> None:
    now = datetime.now(UTC)
    with env.store.write() as session:
        ids = []
        for service, channel in (("web-svc", CHANNEL), ("emoji-svc", "C0OTHER")):
            experiment = create_experiment(
                session=session,
                kind=ExperimentKind.DELAY,
                parameters={},
                cluster="default",
                namespace=NS,
                service=service,
                duration=timedelta(minutes=1),
                created_by=ALICE,
                channel=channel,
                now=now,
            )
            ids.append(experiment.id)
        mark_failed(session=session, experiment_id=ids[0], detail="could not apply", now=now)
    with env.store.read() as session:
        assert [e.id for e in list_failed(session=session)] == [ids[0]]
        assert not list_failed(session=session, namespace="elsewhere")
        assert not list_failed(session=session, since=now + timedelta(seconds=1))
        # Same creation time: ordered by id then, so compare as sets.
        assert {e.id for e in list_experiments(session=session, since=now)} == set(ids)
        assert [e.id for e in list_experiments(session=session, since=now, channel="C0OTHER")] == [ids[1]]
        assert not list_experiments(session=session, since=now + timedelta(seconds=1))
