"""Real databases for the store tests: SQLite files and a throwaway PostgreSQL server.

Each test gets its own database, copied from one migrated once per session (a file copy on
SQLite, CREATE DATABASE ... TEMPLATE on PostgreSQL), so tests are isolated and still fast.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from core.store import Store
from core.store.migrate import upgrade

from .helpers import postgres

DATABASES = ("sqlite", "postgresql")
_names = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.PostgresServer]:
    try:
        with postgres.running_postgres() as server:
            yield server
    except postgres.PostgresUnavailable as error:
        # Not a skip: `make test` installs PostgreSQL, so its absence is a broken setup.
        pytest.fail(f"cannot start the test PostgreSQL server: {error}", pytrace=False)


@pytest.fixture(scope="session")
def _postgres_template(postgres_server: postgres.PostgresServer) -> str:
    name = "meshbot_template"
    store = Store.from_url(postgres_server.create_database(name))
    upgrade(store.engine)
    store.dispose()
    return name


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "meshbot.db"
    store = Store.from_url(f"sqlite:///{path}")
    upgrade(store.engine)
    store.dispose()
    return path


@pytest.fixture
def make_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str, bool], str]]:
    """``make(dialect, migrated)`` → URL of a new database of its own for this test."""
    dropped: list[tuple[postgres.PostgresServer, str]] = []

    def make(dialect: str, migrated: bool = True) -> str:
        if dialect == "sqlite":
            path = tmp_path / f"meshbot-{next(_names)}.db"
            if migrated:
                shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
            return f"sqlite:///{path}"
        server: postgres.PostgresServer = request.getfixturevalue("postgres_server")
        template = request.getfixturevalue("_postgres_template") if migrated else None
        name = f"meshbot_test_{next(_names)}"
        url = server.create_database(name, template=template)
        dropped.append((server, name))
        return url

    yield make
    for server, name in dropped:
        server.drop_database(name)


@pytest.fixture(params=DATABASES)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(dialect: str, make_database: Callable[[str, bool], str]) -> str:
    """A migrated, empty database."""
    return make_database(dialect, True)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.from_url(database_url)
    yield store
    store.dispose()


@pytest.fixture
def meshbot() -> Callable[..., Result]:
    """Run the real ``meshbot`` CLI in-process against a database URL."""
    runner = CliRunner()

    def run(url: str, *args: str, env: dict[str, str] | None = None) -> Result:
        from bot.cli import app  # imported here: a broken sibling CLI module fails only CLI tests

        return runner.invoke(app, list(args), env={"MESHBOT_DATABASE_URL": url, **(env or {})})

    return run
