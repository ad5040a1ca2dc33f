"""Schedules (fault commands to run later) and channel bindings (a channel's defaults)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from core.store import (
    InvalidValue,
    ScheduleNotFound,
    Store,
    clear_binding,
    create_schedule,
    delete_schedule,
    get_binding,
    get_schedule,
    list_schedules,
    set_binding,
    update_schedule,
)

from .helpers import ALICE, BOB, NOW

COMMAND = "/mesh fault delay web-svc 2s 50% for 10m"


def test_schedule_crud(store: Store) -> None:
    with store.write() as session:
        nightly = create_schedule(
            session=session,
            command=COMMAND,
            channel="C0PROD",
            created_by=ALICE,
            cron="0 3 * * mon-fri",
            timezone="Europe/Paris",
            reminder_lead=timedelta(minutes=15),
            now=NOW,
        )
        once = create_schedule(
            session=session,
            command=COMMAND,
            channel="C0DEV",
            created_by=BOB,
            run_at=NOW + timedelta(days=1),
        )
    assert re.fullmatch(r"sch-[0-9a-f]{4}", nightly.id)

    with store.read() as session:
        got = get_schedule(session=session, schedule_id=nightly.id)
        assert (got.command, got.cron, got.timezone, got.run_at) == (
            COMMAND,
            "0 3 * * mon-fri",
            "Europe/Paris",
            None,
        )
        assert (got.reminder_lead_seconds, got.enabled, got.created_by_user) == (
            900,
            True,
            "U0ALICE",
        )
        assert get_schedule(session=session, schedule_id=once.id).run_at == NOW + timedelta(days=1)
        assert [s.id for s in list_schedules(session=session, channel="C0PROD")] == [nightly.id]

    with store.write() as session:
        update_schedule(session=session, schedule_id=nightly.id, enabled=False)
        update_schedule(session=session, schedule_id=once.id, run_at=None, cron="*/30 * * * *")
    with store.read() as session:
        assert [s.id for s in list_schedules(session=session, enabled=True)] == [once.id]
        changed = get_schedule(session=session, schedule_id=once.id)
        assert (changed.run_at, changed.cron) == (None, "*/30 * * * *")

    with store.write() as session:
        delete_schedule(session=session, schedule_id=nightly.id)
    with pytest.raises(ScheduleNotFound), store.read() as session:
        get_schedule(session=session, schedule_id=nightly.id)
    with pytest.raises(ScheduleNotFound), store.write() as session:
        delete_schedule(session=session, schedule_id=nightly.id)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "exactly one of a time (run_at) or a cron expression"),
        ({"cron": "0 3 * * *", "run_at": NOW}, "exactly one of"),
        ({"cron": "every night"}, "cannot read cron expression 'every night'"),
        ({"cron": "0 3 * * *", "timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"cron": "0 3 * * *", "reminder_lead": timedelta(minutes=-1)}, "cannot be negative"),
        ({"run_at": NOW.replace(tzinfo=None)}, "run_at must carry its time zone"),
    ],
)
def test_bad_schedules_are_refused(store: Store, fields: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidValue, match=re.escape(message)), store.write() as session:
        create_schedule(session=session, command=COMMAND, channel="C1", created_by=ALICE, **fields)


def test_channel_binding_get_set_and_rebind(store: Store) -> None:
    with store.read() as session:
        assert get_binding(session=session, channel="C0PROD") is None
    with store.write() as session:
        set_binding(
            session=session,
            channel="C0PROD",
            cluster="prod-eu",
            namespace="shop",
            set_by=ALICE,
            now=NOW,
        )
    with store.write() as session:
        set_binding(
            session=session,
            channel="C0PROD",
            cluster="prod-us",
            namespace="shop",
            set_by=BOB,
            now=NOW,
        )
    with store.read() as session:
        binding = get_binding(session=session, channel="C0PROD")
        assert binding is not None
        assert (binding.cluster, binding.namespace, binding.updated_by_user) == (
            "prod-us",
            "shop",
            "U0BOB",
        )
        assert get_binding(session=session, channel="C0OTHER") is None
    with store.write() as session:
        assert clear_binding(session=session, channel="C0PROD") is True
        assert clear_binding(session=session, channel="C0PROD") is False
