"""meshbot driven against a playground as in tests/scenarios: the RBAC tests run its workflow."""

from tests.scenarios.conftest import _migrated_database, make_meshbot

__all__ = ["_migrated_database", "make_meshbot"]
