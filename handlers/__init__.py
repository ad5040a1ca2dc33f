"""One module per /mesh verb: parse → validate → call mesh/ → record → a transport-free Reply.

VERBS is the registry: which module handles which verb, at a glance.
"""

from __future__ import annotations

from typing import cast

from handlers import audit, dashboard, fault, use
from handlers import help as help_
from handlers.verb import Verb

VERBS: dict[str, Verb] = {
    cast(Verb, module).VERB: cast(Verb, module)
    for module in (
        help_,
        use,
        fault,
        dashboard,
        audit,
    )
}
