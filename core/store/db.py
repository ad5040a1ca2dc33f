"""Engines and sessions: URL normalization, SQLite pragmas, write vs. read transactions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core.store.chain import SESSION_KEY_INFO, AuditKey
from core.store.errors import DatabaseUnavailable, SchemaNotCurrent

# The database being down or gone shows up as any of these; anything else is a bug to surface.
DATABASE_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError, DatabaseUnavailable, SchemaNotCurrent)

# Execution option read by the SQLite ``begin`` hook: which BEGIN to emit.
_SQLITE_BEGIN = "meshbot_sqlite_begin"
_SQLITE_BUSY_TIMEOUT_MS = 15_000
# The append-only triggers and the prune grant exist for these two only.
SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def database_url(raw: str) -> URL:
    """Parse a database URL; plain ``postgresql://``/``postgres://`` mean psycopg 3."""
    try:
        url = make_url(raw)
    except ArgumentError:
        # SQLAlchemy's message would not leak the password either, but be explicit about it.
        raise DatabaseUnavailable(
            "cannot parse the database URL (MESHBOT_DATABASE_URL); expected e.g. "
            "sqlite:///meshbot.db or postgresql://user:password@host:5432/meshbot"
        ) from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def redacted(url: URL | str) -> str:
    """The URL as it may be shown or logged: the password replaced by ``***``."""
    if isinstance(url, str):
        try:
            url = make_url(url)
        except ArgumentError:
            return "<unparsable database URL>"
    return url.render_as_string(hide_password=True)


def create_store_engine(url: URL | str, **engine_options: Any) -> Engine:
    """An engine for the store; nothing connects until first use."""
    url = database_url(url) if isinstance(url, str) else url
    if url.get_backend_name() not in SUPPORTED_BACKENDS:
        raise DatabaseUnavailable(
            f"unsupported database URL {redacted(url)}: meshbot speaks sqlite:// and postgresql://"
        )
    try:
        engine = create_engine(url, **engine_options)
    except (NoSuchModuleError, ImportError) as error:
        raise DatabaseUnavailable(
            f"cannot load the driver for {redacted(url)}: {error} (meshbot uses psycopg 3)"
        ) from None
    except ArgumentError as error:
        raise DatabaseUnavailable(f"invalid database URL {redacted(url)}: {error}") from None
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's BEGIN below own transactions; pysqlite's implicit ones cannot be
        # IMMEDIATE and break SAVEPOINT and transactional DDL.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the write lock up front: a deferred transaction that reads the chain head
        # and then writes would fail with SQLITE_BUSY under a concurrent writer.
        mode = connection.get_execution_options().get(_SQLITE_BEGIN, "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")


def check_connection(engine: Engine) -> None:
    """Connect once, so an unreachable database is one clear error rather than a traceback later."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError as error:
        raise DatabaseUnavailable(
            f"cannot reach database {redacted(engine.url)}: {_reason(error, engine.url)}"
        ) from None


def _reason(error: DBAPIError, url: URL) -> str:
    reason = str(error.orig).strip().splitlines()[0] if error.orig is not None else str(error)
    if url.password:
        # Drivers do not echo passwords today; make sure a future one cannot leak it here. Only
        # where a password would be quoted — the URL, `password=` — or a short one (`e`) would
        # garble every word that contains it.
        secret = str(url.password)
        reason = reason.replace(url.render_as_string(hide_password=False), redacted(url))
        reason = re.sub(
            rf"(password\s*=\s*['\"]?){re.escape(secret)}(?=['\"\s]|$)", r"\1***", reason, flags=re.I
        )
    return reason


def sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL points at, or None for other databases and in-memory SQLite."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(str(url.database))


class Store:
    """An engine and the two kinds of session meshbot uses; built by an app factory or the CLI.

    ``audit_key`` (MESHBOT_AUDIT_KEY) rides on every session, where appends and verify find it.
    """

    def __init__(self, engine: Engine, *, audit_key: AuditKey | None = None) -> None:
        self.engine = engine
        self.audit_key = audit_key
        info = {SESSION_KEY_INFO: audit_key}
        self._write_sessions = sessionmaker(bind=engine, expire_on_commit=False, info=info)
        self._read_sessions = sessionmaker(
            bind=engine.execution_options(**{_SQLITE_BEGIN: "DEFERRED"}), expire_on_commit=False, info=info
        )

    @classmethod
    def from_url(cls, url: str, *, audit_key: AuditKey | None = None, **engine_options: Any) -> Store:
        return cls(create_store_engine(url, **engine_options), audit_key=audit_key)

    @property
    def display_url(self) -> str:
        return redacted(self.engine.url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error.

        On SQLite it starts with BEGIN IMMEDIATE, so writers queue instead of failing.
        """
        with self._write_sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self, *, snapshot: bool = False) -> Iterator[Session]:
        """A session for queries; on SQLite it does not take the write lock.

        With ``snapshot`` every statement sees the database as of the first one (REPEATABLE READ
        on PostgreSQL; a SQLite read transaction always does), as a walk over the whole audit
        chain in batches needs while others append or prune.
        """
        with self._read_sessions() as session, session.begin():
            if snapshot and self.dialect == "postgresql":
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            yield session

    def check_connection(self) -> None:
        check_connection(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
