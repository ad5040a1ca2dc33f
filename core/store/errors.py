"""What can go wrong in the store, as exceptions a front end can turn into one clear line."""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store raises on purpose; its message is safe to show a user."""


class DatabaseUnavailable(StoreError):
    """The database cannot be reached or opened; the message names the URL without its password."""


class SchemaNotCurrent(StoreError):
    """The database has no meshbot schema, or an older or newer one than this code expects."""


class FilterError(StoreError, ValueError):
    """An audit filter the user typed is not understood; a usage error, not a failure."""


class InvalidValue(StoreError, ValueError):
    """A value handed to the repository breaks one of its rules (e.g. a bad cron expression)."""


class NotFound(StoreError, LookupError):
    """The record asked for does not exist."""


class ExperimentNotFound(NotFound):
    def __init__(self, experiment_id: str) -> None:
        super().__init__(f"no experiment {experiment_id}")
        self.experiment_id = experiment_id


class ScheduleNotFound(NotFound):
    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"no schedule {schedule_id}")
        self.schedule_id = schedule_id


class InvalidTransition(StoreError):
    """An experiment was asked to move to a state its current state does not lead to."""

    def __init__(self, experiment_id: str, state: str, action: str) -> None:
        super().__init__(f"experiment {experiment_id} is {state}; cannot {action} it")
        self.experiment_id = experiment_id
        self.state = state
        self.action = action


class ChainError(StoreError):
    """The audit chain's bookkeeping is missing or broken, so appending or pruning must stop."""


class AuditKeyError(StoreError):
    """MESHBOT_AUDIT_KEY is set but unusable (too short); the message never contains the key."""
