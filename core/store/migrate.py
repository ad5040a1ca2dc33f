"""Schema migrations: alembic driven from code (no alembic.ini), and the start-up schema check."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from core.store.db import check_connection, redacted
from core.store.errors import SchemaNotCurrent


def migrations_dir() -> Path:
    return Path(str(files("migrations")))


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic Config for meshbot's migrations, wherever the process was started."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "migrations/versions holds no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision; None when it has no meshbot schema."""
    check_connection(engine)
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@dataclass(frozen=True)
class MigrationResult:
    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


# Any constant works; it only has to be the same in every meshbot process.
_MIGRATION_LOCK = 0x6D657368626F74


def upgrade(engine: Engine, revision: str = "head") -> MigrationResult:
    """Upgrade in one transaction (both databases have transactional DDL).

    Replicas starting together with auto-migrate take turns: on PostgreSQL an advisory lock,
    on SQLite the write lock of BEGIN IMMEDIATE; the later one then finds the schema current.
    """
    check_connection(engine)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        before = MigrationContext.configure(connection).get_current_revision()
        _refuse_unknown(engine, before)
        command.upgrade(alembic_config(connection), revision)
    return MigrationResult(before, current_revision(engine))


def downgrade(engine: Engine, revision: str = "base") -> MigrationResult:
    before = current_revision(engine)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)
    return MigrationResult(before, current_revision(engine))


def _refuse_unknown(engine: Engine, revision: str | None) -> None:
    if revision is None:
        return
    script = ScriptDirectory.from_config(alembic_config())
    if revision in {known.revision for known in script.walk_revisions()}:
        return
    raise SchemaNotCurrent(
        f"database {redacted(engine.url)} is at schema revision {revision}, which this meshbot "
        "does not know (written by a newer version?); upgrade meshbot instead of migrating"
    )


def ensure_migrated(engine: Engine, *, auto_migrate: bool) -> None:
    """Refuse a database whose schema is missing or not at head, or migrate it when allowed.

    The service calls this at start-up: running on a half-made schema would fail later, on the
    first command, far from the cause.
    """
    try:
        current = current_revision(engine)
    except DBAPIError as error:
        raise SchemaNotCurrent(
            f"cannot read the schema revision of {redacted(engine.url)}: {error.orig}"
        ) from None
    head = head_revision()
    if current == head:
        return
    _refuse_unknown(engine, current)
    if auto_migrate:
        upgrade(engine)
        return
    state = "has no meshbot schema" if current is None else f"is at revision {current}, not {head}"
    raise SchemaNotCurrent(
        f"database {redacted(engine.url)} {state}; run `meshbot migrate` "
        "(or set MESHBOT_AUTO_MIGRATE=true to migrate on start-up)"
    )
