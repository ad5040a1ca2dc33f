"""The resilience suite: meshbot attacked by its own tests, each attack counted (figures.py).

The Slack front comes from tests/slack/conftest.py (a playground cluster and the fake Slack; the
migrated SQLite store from tests/conftest.py), the lifecycle environment from
tests/lifecycle/conftest.py: the same real parts, re-exported here so an attack and a regular
test see the same meshbot.
"""

from __future__ import annotations

import pytest

from core.store import Store, verify_chain
from tests.lifecycle.conftest import env
from tests.slack.conftest import fake_slack, make_slack_app, slack, slack_app

__all__ = ["env", "fake_slack", "make_slack_app", "slack", "slack_app"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/resilience/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.resilience)


def assert_chain_intact(store: Store) -> int:
    """The audit chain verifies; returns how many rows it holds."""
    with store.read(snapshot=True) as session:
        report = verify_chain(session=session)
    assert report.intact, report.broken
    return report.rows
