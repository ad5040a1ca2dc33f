"""Connecting: URL forms, SQLite pragmas, and unreachable databases reported without passwords."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import Result

from core.store import DatabaseUnavailable, Store, open_store
from tests.support.sockets import closed_port

from .helpers import postgres

PASSWORD = "s3cr3t-Pa55"


def test_sqlite_runs_in_wal_mode_with_foreign_keys(
    make_database: Callable[[str, bool], str],
) -> None:
    store = Store.from_url(make_database("sqlite", True))
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    store.dispose()


def test_plain_postgresql_urls_use_psycopg_3(postgres_server: postgres.PostgresServer) -> None:
    url = f"postgresql://meshbot:{PASSWORD}@127.0.0.1:{postgres_server.port}/postgres"
    store = Store.from_url(url)
    assert store.engine.url.drivername == "postgresql+psycopg"
    assert store.display_url == f"postgresql+psycopg://meshbot:***@127.0.0.1:{postgres_server.port}/postgres"
    store.check_connection()
    store.dispose()


def test_an_unreachable_database_is_named_without_its_password() -> None:
    port = closed_port()
    with pytest.raises(DatabaseUnavailable) as raised:
        open_store(f"postgresql://meshbot:{PASSWORD}@127.0.0.1:{port}/meshbot", auto_migrate=False)
    message = str(raised.value)
    assert message.startswith(
        f"cannot reach database postgresql+psycopg://meshbot:***@127.0.0.1:{port}/meshbot"
    )
    assert PASSWORD not in message


@pytest.mark.parametrize("password", ["e", "on", "5"])
def test_a_short_password_is_masked_where_it_stands_not_in_every_word(password: str) -> None:
    port = closed_port()
    with pytest.raises(DatabaseUnavailable) as raised:
        open_store(f"postgresql://meshbot:{password}@127.0.0.1:{port}/meshbot", auto_migrate=False)
    assert str(raised.value) == (
        f"cannot reach database postgresql+psycopg://meshbot:***@127.0.0.1:{port}/meshbot: "
        f'connection failed: connection to server at "127.0.0.1", port {port} failed: Connection refused'
    )


@pytest.mark.parametrize(
    "command",
    [["audit"], ["audit", "verify"], ["migrate"], ["audit", "prune", "--older-than", "1d", "--yes"]],
)
def test_the_cli_says_so_in_one_line_without_the_password(
    meshbot: Callable[..., Result], command: list[str]
) -> None:
    url = f"postgresql://meshbot:{PASSWORD}@127.0.0.1:{closed_port()}/meshbot"
    result = meshbot(url, *command)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach database postgresql+psycopg://meshbot:***@")
    assert len(result.stderr.strip().splitlines()) == 1
    assert PASSWORD not in result.output
    assert "Traceback" not in result.output


def test_an_unsupported_or_garbled_url_is_a_clear_error() -> None:
    with pytest.raises(DatabaseUnavailable, match="unsupported database URL mysql://root:\\*\\*\\*@db/x"):
        Store.from_url(f"mysql://root:{PASSWORD}@db/x")
    with pytest.raises(DatabaseUnavailable, match="cannot parse the database URL") as raised:
        Store.from_url(f"not a url {PASSWORD}")
    assert PASSWORD not in str(raised.value)


def test_missing_postgresql_binaries_fail_with_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(postgres, "BINARIES_GLOB", str(tmp_path / "postgresql" / "*" / "bin"))
    with pytest.raises(postgres.PostgresUnavailable, match="apt-get install postgresql"):
        postgres.find_binaries()
