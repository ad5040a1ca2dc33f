"""Schema migrations: alembic driven from code (no alembic.ini), and the start-up schema check."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from core.store.db import check_connection, redacted
from core.store.errors import SchemaNotCurrent

if TYPE_CHECKING:
    from alembic.config import Config


def migrations_dir() -> Path:
    return Path(str(files("migrations")))


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic Config for meshbot's migrations, wherever the process was started."""
    # Alembic (~0.25 s to import) is loaded only to change or verify a schema: every process
    # start asks "is it at head?", which the plain reads below answer.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


_REVISION = re.compile(r"""^revision(?::[^=]*)?=\s*["']([^"']+)["']""", re.MULTILINE)
_DOWN = re.compile(r"""^down_revision(?::[^=]*)?=\s*["']([^"']+)["']""", re.MULTILINE)


@functools.cache
def head_revision() -> str:
    """The one revision no other revises, read from the scripts' text rather than by importing
    them through alembic (tests/store/test_migrations.py checks both agree)."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for script in migrations_dir().joinpath("versions").glob("*.py"):
        source = script.read_text(encoding="utf-8")
        revisions.update(_REVISION.findall(source))
        revised.update(_DOWN.findall(source))
    heads = revisions - revised
    assert len(heads) == 1, f"migrations/versions should have one head, has {sorted(heads)}"
    return heads.pop()


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision; None when it has no meshbot schema."""
    check_connection(engine)
    with engine.connect() as connection:
        return _recorded(connection)


def _recorded(connection: Connection) -> str | None:
    # What alembic's MigrationContext.get_current_revision reads, without importing alembic.
    if not inspect(connection).has_table("alembic_version"):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:
        raise SchemaNotCurrent(f"the database records several schema revisions: {sorted(rows)}")
    return rows[0] if rows else None


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
        before = _recorded(connection)
        _refuse_unknown(engine, before)
        from alembic import command

        command.upgrade(alembic_config(connection), revision)
    return MigrationResult(before, current_revision(engine))


def downgrade(engine: Engine, revision: str = "base") -> MigrationResult:
    from alembic import command

    before = current_revision(engine)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)
    return MigrationResult(before, current_revision(engine))


def _refuse_unknown(engine: Engine, revision: str | None) -> None:
    if revision is None:
        return
    from alembic.script import ScriptDirectory

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
