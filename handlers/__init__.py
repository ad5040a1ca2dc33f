"""One module per /mesh verb: parse → validate → call mesh/ → record → a transport-free Reply.

VERBS is the registry: which module handles which verb, at a glance.
"""

from __future__ import annotations

from typing import cast

from handlers import (
    audit,
    dashboard,
    expose,
    fault,
    inject,
    install,
    mtls,
    pause,
    postpone,
    resume,
    schedule,
    schedules,
    skip,
    status,
    unexpose,
    uninject,
    uninstall,
    unschedule,
    use,
)
from handlers import help as help_
from handlers.verb import Verb

VERBS: dict[str, Verb] = {
    cast(Verb, module).VERB: cast(Verb, module)
    for module in (
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
        audit,
        schedule,
        schedules,
        unschedule,
        pause,
        resume,
        skip,
        postpone,
    )
}
