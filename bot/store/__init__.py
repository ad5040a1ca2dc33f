"""The experiment store and audit log: the only code that talks SQL.

Build a :class:`Store` where the app or a CLI command starts (``open_store`` checks the schema),
then call the repository functions with a session from ``store.write()`` / ``store.read()``.
"""

from __future__ import annotations

from bot.store.audit import (
    AuditPage,
    NewAuditEvent,
    PruneResult,
    event_to_dict,
    prune_events,
    query_events,
    record_event,
    record_events,
)
from bot.store.bindings import clear_binding, get_binding, set_binding
from bot.store.chain import ChainReport, verify_chain
from bot.store.db import Store, create_store_engine, redacted
from bot.store.errors import (
    ChainError,
    DatabaseUnavailable,
    ExperimentNotFound,
    FilterError,
    InvalidTransition,
    InvalidValue,
    NotFound,
    ScheduleNotFound,
    SchemaNotCurrent,
    StoreError,
)
from bot.store.experiments import (
    VirtualServiceChange,
    begin_ending,
    create_experiment,
    end_experiment,
    extend_experiment,
    get_experiment,
    list_active,
    list_expired_active,
    mark_active,
    mark_failed,
    plan_experiment,
)
from bot.store.filters import AuditQuery, parse_filter_text, parse_filters
from bot.store.migrate import ensure_migrated
from bot.store.models import AuditEvent, ChannelBinding, Experiment, Schedule
from bot.store.schedules import (
    create_schedule,
    delete_schedule,
    get_schedule,
    list_schedules,
    update_schedule,
)
from bot.store.startup import open_store
from bot.store.values import (
    Actor,
    EndReason,
    ExperimentKind,
    ExperimentState,
    Outcome,
    Source,
    Target,
)

__all__ = [
    "Actor",
    "AuditEvent",
    "AuditPage",
    "AuditQuery",
    "ChainError",
    "ChainReport",
    "ChannelBinding",
    "DatabaseUnavailable",
    "EndReason",
    "Experiment",
    "ExperimentKind",
    "ExperimentNotFound",
    "ExperimentState",
    "FilterError",
    "InvalidTransition",
    "InvalidValue",
    "NewAuditEvent",
    "NotFound",
    "Outcome",
    "PruneResult",
    "Schedule",
    "ScheduleNotFound",
    "SchemaNotCurrent",
    "Source",
    "Store",
    "StoreError",
    "Target",
    "VirtualServiceChange",
    "begin_ending",
    "clear_binding",
    "create_experiment",
    "create_schedule",
    "create_store_engine",
    "delete_schedule",
    "end_experiment",
    "ensure_migrated",
    "event_to_dict",
    "extend_experiment",
    "get_binding",
    "get_experiment",
    "get_schedule",
    "list_active",
    "list_expired_active",
    "list_schedules",
    "mark_active",
    "mark_failed",
    "open_store",
    "parse_filter_text",
    "parse_filters",
    "plan_experiment",
    "prune_events",
    "query_events",
    "record_event",
    "record_events",
    "redacted",
    "set_binding",
    "update_schedule",
    "verify_chain",
]
