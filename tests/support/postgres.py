"""A throwaway PostgreSQL server in a temp dir on 127.0.0.1, for tests and benchmarks.

initdb and postgres refuse to run as root, so as root both run as the ``postgres`` user via
runuser; as anyone else they run as that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

SUPERUSER = "meshbot"
BINARIES_GLOB = "/usr/lib/postgresql/*/bin"
# Durability is not what tests measure; benchmarks pass durable=True for realistic commits.
_FAST_UNSAFE = ("-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off")


class PostgresUnavailable(RuntimeError):
    """The server binaries are missing or the server would not start."""


def find_binaries() -> Path:
    """The bin dir of the newest PostgreSQL installed the Debian way."""
    candidates = [Path(p) for p in glob.glob(BINARIES_GLOB) if Path(p, "initdb").exists()]
    if not candidates:
        raise PostgresUnavailable(
            f"PostgreSQL server binaries not found ({BINARIES_GLOB}/initdb): install them with "
            "`apt-get install postgresql` (`make test` does this via scripts/ensure-debs.sh)"
        )
    return max(candidates, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresServer:
    bin_dir: Path
    data_dir: Path
    port: int
    run_as: str | None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        credentials = f"{SUPERUSER}:{password}" if password else SUPERUSER
        return f"postgresql+psycopg://{credentials}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=self.host, port=self.port, user=SUPERUSER, dbname=database, autocommit=True
        )

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """A new database (optionally a copy of ``template``); returns its SQLAlchemy URL."""
        clause = f' TEMPLATE "{template}"' if template else ""
        with self.connect() as connection:
            connection.execute(f'CREATE DATABASE "{name}"{clause}'.encode())
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self.connect() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())

    def _command(self, program: str, *args: str) -> list[str]:
        argv = [str(self.bin_dir / program), *args]
        return ["runuser", "-u", self.run_as, "--", *argv] if self.run_as else argv

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(self._command(program, *args), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = self.data_dir / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailable(
                f"{program} {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}{tail}"
            )

    def start(self, options: Sequence[str]) -> None:
        server_options = " ".join(
            [f"-k {self.data_dir}", f"-p {self.port}", "-c listen_addresses=127.0.0.1", *options]
        )
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-o", server_options,
            "-l", str(self.data_dir / "log"), "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")


@contextmanager
def running_postgres(*, durable: bool = False, extra_options: Sequence[str] = ()) -> Iterator[PostgresServer]:
    """Start a fresh server (initdb, trust auth, superuser meshbot); then stop and remove it."""
    bin_dir = find_binaries()
    run_as = "postgres" if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="meshbot-pg-"))
    data_dir = base / "data"
    data_dir.mkdir(mode=0o700)
    if run_as:
        user = pwd.getpwnam(run_as)
        for path in (base, data_dir):
            os.chown(path, user.pw_uid, user.pw_gid)
    server = PostgresServer(bin_dir=bin_dir, data_dir=data_dir, port=0, run_as=run_as)
    try:
        server._run("initdb", "-D", str(data_dir), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8")
        options = [*([] if durable else _FAST_UNSAFE), *extra_options]
        for attempt in range(3):
            server.port = _free_port()
            try:
                server.start(options)
                break
            except PostgresUnavailable:
                # Another process may have taken the port between probe and bind.
                if attempt == 2:
                    raise
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
