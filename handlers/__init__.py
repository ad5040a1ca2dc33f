"""One module per /mesh verb: parse → validate → call mesh/ → record → a transport-free Reply.

VERBS is the registry: which module handles which verb and the rules it declared, at a glance.
A module without ``rules`` stops the import here (handlers.registry.MissingRules).
"""

from __future__ import annotations

from handlers import (
    audit,
    dashboard,
    expose,
    fault,
    graph,
    inject,
    install,
    mtls,
    pause,
    postpone,
    resume,
    schedule,
    schedule_list,
    skip,
    status,
    summary,
    unexpose,
    uninject,
    uninstall,
    unschedule,
    use,
)
from handlers import help as help_
from handlers.registry import VERBS, Registered, Registry

VERBS.fill(
    (
        help_,
        status,
        use,
        install,
        uninstall,
        inject,
        uninject,
        expose,
        unexpose,
        fault,
        mtls,
        dashboard,
        summary,
        graph,
        audit,
        schedule,
        schedule_list,
        unschedule,
        pause,
        resume,
        skip,
        postpone,
    )
)

__all__ = ["VERBS", "Registered", "Registry"]
