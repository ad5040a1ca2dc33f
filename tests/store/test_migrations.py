"""Schema migrations: up and down on both databases, no drift from the models, start-up checks."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from typer.testing import Result

from core.store import SchemaNotCurrent, Store, ensure_migrated, open_store
from core.store.migrate import alembic_config, current_revision, downgrade, head_revision, upgrade
from core.store.models import Base

from .helpers import add_event

TABLES = {
    "audit_events",
    "audit_chain",
    "audit_prune_grants",
    "experiments",
    "schedules",
    "channel_bindings",
    "pending_confirmations",
    "slack_request_keys",
}


def triggers(store: Store) -> set[str]:
    with store.engine.connect() as connection:
        if store.dialect == "postgresql":
            query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
        else:
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        return {row[0] for row in connection.execute(text(query))}


@pytest.fixture
def empty_store(dialect: str, make_database: Callable[[str, bool], str]) -> Iterator[Store]:
    store = Store.from_url(make_database(dialect, False))
    yield store
    store.dispose()


def test_upgrade_to_head_then_downgrade_to_base(empty_store: Store) -> None:
    result = upgrade(empty_store.engine)
    assert (result.before, result.after) == (None, head_revision())
    assert set(inspect(empty_store.engine).get_table_names()) >= TABLES
    assert len(triggers(empty_store)) >= 2

    result = downgrade(empty_store.engine)
    assert (result.before, result.after) == (head_revision(), None)
    assert set(inspect(empty_store.engine).get_table_names()) == {"alembic_version"}
    assert triggers(empty_store) == set()

    upgrade(empty_store.engine)
    add_event(empty_store)


def test_models_match_the_migrations(store: Store) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_an_unmigrated_database_is_refused_naming_meshbot_migrate(empty_store: Store) -> None:
    with pytest.raises(SchemaNotCurrent) as refused:
        ensure_migrated(empty_store.engine, auto_migrate=False)
    assert "has no meshbot schema; run `meshbot migrate`" in str(refused.value)
    assert current_revision(empty_store.engine) is None


def test_the_head_read_from_the_scripts_text_is_alembics() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_auto_migrate_brings_the_schema_to_head(empty_store: Store) -> None:
    ensure_migrated(empty_store.engine, auto_migrate=True)
    assert current_revision(empty_store.engine) == head_revision()
    add_event(empty_store)


def test_a_schema_from_a_newer_meshbot_is_refused_even_with_auto_migrate(store: Store) -> None:
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaNotCurrent, match="revision 9999, which this meshbot does not know"):
        ensure_migrated(store.engine, auto_migrate=True)


def test_cli_migrate_creates_the_schema_once_and_records_it(
    dialect: str, make_database: Callable[[str, bool], str], meshbot: Callable[..., Result]
) -> None:
    url = make_database(dialect, False)
    refused = meshbot(url, "audit")
    assert refused.exit_code == 1
    assert "run `meshbot migrate`" in refused.stderr

    first = meshbot(url, "migrate")
    again = meshbot(url, "migrate")
    assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output
    assert first.stdout.strip().endswith(f"upgraded schema from empty to {head_revision()}")
    assert again.stdout.strip().endswith(f"schema already at {head_revision()}")

    listed = meshbot(url, "audit", "verb=migrate", "--format", "csv")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.count("meshbot migrate") == 2


def test_cli_auto_migrate_setting(
    dialect: str, make_database: Callable[[str, bool], str], meshbot: Callable[..., Result]
) -> None:
    url = make_database(dialect, False)
    result = meshbot(url, "audit", env={"MESHBOT_AUTO_MIGRATE": "true"})
    assert result.exit_code == 0, result.output
    assert result.stdout == "no audit events match\n"


def test_a_missing_sqlite_file_is_not_created_by_a_read(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.db"
    with pytest.raises(SchemaNotCurrent, match="the file does not exist; run `meshbot migrate`"):
        open_store(f"sqlite:///{path}", auto_migrate=False)
    assert not path.exists()
    open_store(f"sqlite:///{path}", auto_migrate=True).dispose()
    assert path.exists()


def test_replicas_auto_migrating_at_once_take_turns(empty_store: Store) -> None:
    errors: list[BaseException] = []

    def start_replica() -> None:
        try:
            ensure_migrated(empty_store.engine, auto_migrate=True)
        except BaseException as error:  # surfaced below: a thread's exception is otherwise lost
            errors.append(error)

    replicas = [threading.Thread(target=start_replica) for _ in range(3)]
    for replica in replicas:
        replica.start()
    for replica in replicas:
        replica.join()
    assert errors == []
    assert current_revision(empty_store.engine) == head_revision()
