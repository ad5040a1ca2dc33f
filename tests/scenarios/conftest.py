"""`meshbot run` against a playground and a temporary SQLite store, the way a person at a terminal
uses it: a kubeconfig, MESHBOT_* settings, the stand-in istioctl on PATH.

Most commands run in-process through Typer's CliRunner (fast); `Meshbot.process` runs the real
console script for the tests that prove it works as installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import kubernetes.client
import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner, Result

from bot.cli import app
from core.store import AuditEvent, Experiment, Store
from core.store.migrate import upgrade
from mesh.lease import micro_time
from playground.hooks import RequestRecord
from playground.runner import Playground
from tests.conftest import kube_client_for

NS = "emojivoto-istio"
USER = "alice"
STAND_IN_BIN = Path(__file__).resolve().parents[1] / "support" / "bin"
MESHBOT_SCRIPT = Path(sys.executable).with_name("meshbot")
ISTIO = ("networking.istio.io", "v1")
EXPERIMENT_ID = re.compile(r"\bexp-[0-9a-f]+\b")
T = TypeVar("T")


def must(value: T | None) -> T:
    """A field the typed client models as optional that the test needs to be there."""
    assert value is not None
    return value


def name_of(obj: Any) -> str:
    return must(must(obj.metadata).name)


@pytest.fixture(scope="session")
def _migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per session; each test copies it (a file copy, not a migration)."""
    path = tmp_path_factory.mktemp("template") / "meshbot.db"
    store = Store.from_url(f"sqlite:///{path}")
    upgrade(store.engine)
    store.dispose()
    return path


@dataclass
class Meshbot:
    """meshbot configured for one playground: run commands, read the cluster and the store back."""

    pg: Playground
    tmp: Path
    env: dict[str, str]
    api: kubernetes.client.ApiClient
    _runner: CliRunner = field(default_factory=CliRunner)

    # ------------------------------------------------------------------ running meshbot

    def run(
        self, command: str, *, user: str = USER, channel: str | None = None, wait: bool = False
    ) -> Result:
        """`meshbot run "<command>" --user <user> [--channel <channel>] [--wait]`, in-process."""
        args = ["run", command, "--user", user, *(["--channel", channel] if channel else [])]
        return self.cli(*args, *(["--wait"] if wait else []))

    def cli(self, *args: str, input: str | None = None) -> Result:
        result = self._runner.invoke(app, list(args), env=self.env, input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    def process(
        self, *args: str, input: str | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The installed `meshbot` console script as a real process."""
        return subprocess.run(
            [str(MESHBOT_SCRIPT), *args],
            input=input,
            capture_output=True,
            text=True,
            env={**os.environ, **self.env},
            cwd=cwd or self.tmp,
            timeout=60,
            check=False,
        )

    def set_policy(self, policy: dict[str, Any]) -> Path:
        path = self.tmp / "policy.yaml"
        path.write_text(yaml.safe_dump(policy))
        self.env["MESHBOT_POLICY_FILE"] = str(path)
        return path

    def ok(self, command: str, **kwargs: Any) -> str:
        """Runs a command that must succeed; returns its reply."""
        result = self.run(command, **kwargs)
        assert result.exit_code == 0, f"{command!r} exited {result.exit_code}:\n{result.output}"
        return result.output

    def inject_fault(self, command: str, **kwargs: Any) -> str:
        """Runs a fault command that must succeed; returns the experiment id its reply names."""
        reply = self.ok(command, **kwargs)
        found = EXPERIMENT_ID.search(reply)
        assert found, reply
        return found.group()

    # ------------------------------------------------------------------ the store

    @property
    def database_url(self) -> str:
        return self.env["MESHBOT_DATABASE_URL"]

    def audit_events(self) -> list[AuditEvent]:
        """Every audit row, oldest first."""
        store = Store.from_url(self.database_url)
        try:
            with store.read() as session:
                events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
                session.expunge_all()
        finally:
            store.dispose()
        return events

    def last_event(self) -> AuditEvent:
        events = self.audit_events()
        assert events, "nothing was audited"
        return events[-1]

    def experiment(self, experiment_id: str) -> Experiment:
        return self.experiments()[experiment_id]

    def experiments(self) -> dict[str, Experiment]:
        store = Store.from_url(self.database_url)
        try:
            with store.read() as session:
                found = {e.id: e for e in session.scalars(select(Experiment))}
                session.expunge_all()
        finally:
            store.dispose()
        return found

    # ------------------------------------------------------------------ the cluster

    @property
    def core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self.api)

    @property
    def apps(self) -> kubernetes.client.AppsV1Api:
        return kubernetes.client.AppsV1Api(self.api)

    @property
    def batch(self) -> kubernetes.client.BatchV1Api:
        return kubernetes.client.BatchV1Api(self.api)

    @property
    def custom(self) -> kubernetes.client.CustomObjectsApi:
        return kubernetes.client.CustomObjectsApi(self.api)

    def istio_object(
        self, plural: str, name: str, namespace: str = NS, version: str = "v1"
    ) -> dict[str, Any]:
        obj = self.custom.get_namespaced_custom_object(ISTIO[0], version, namespace, plural, name)
        assert isinstance(obj, dict)
        return obj

    def virtual_service(self, name: str, namespace: str = NS) -> dict[str, Any]:
        return self.istio_object("virtualservices", name, namespace)

    def virtual_services(self, namespace: str = NS) -> dict[str, dict[str, Any]]:
        """name → {"spec", "annotations"} of every VirtualService in the namespace."""
        return {
            vs["metadata"]["name"]: {
                "spec": vs["spec"],
                "annotations": vs["metadata"].get("annotations") or {},
            }
            for vs in self.istio_objects("virtualservices", namespace)
        }

    def istio_objects(
        self, plural: str, namespace: str = NS, group: str = ISTIO[0], version: str = "v1"
    ) -> list[dict[str, Any]]:
        listed = self.custom.list_namespaced_custom_object(group, version, namespace, plural)
        assert isinstance(listed, dict)
        return list(listed["items"])

    def create_virtual_service(self, manifest: dict[str, Any], namespace: str = NS) -> None:
        self.custom.create_namespaced_custom_object(*ISTIO, namespace, "virtualservices", manifest)

    def lead_elsewhere(self, *, renewed: datetime | None = None, holder: str = "meshbot-7d9f-x2") -> None:
        """A meshbot lifecycle leading from another process, as `meshbot serve` would: the Lease
        its replicas elect with, renewed at ``renewed`` (now by default) for an hour."""
        core = kubernetes.client.CoreV1Api(self.api)
        if not any(n.metadata.name == "meshbot" for n in core.list_namespace().items):
            core.create_namespace({"metadata": {"name": "meshbot"}})
        spec = {
            "holderIdentity": holder,
            "leaseDurationSeconds": 3600,
            "renewTime": micro_time(renewed or datetime.now(UTC)),
        }
        coordination = kubernetes.client.CoordinationV1Api(self.api)
        try:
            coordination.delete_namespaced_lease("meshbot-lifecycle", "meshbot")
        except kubernetes.client.exceptions.ApiException as exc:
            if exc.status != 404:
                raise
        coordination.create_namespaced_lease(
            "meshbot", {"metadata": {"name": "meshbot-lifecycle", "namespace": "meshbot"}, "spec": spec}
        )
        # What meshbot writes is what the tests look at; the stand-in leader's writes are not.
        self.pg.hooks.requests.clear()

    def writes(self) -> list[RequestRecord]:
        """Every write request the playground has answered so far."""
        return self.pg.hooks.writes()

    def istioctl_calls(self) -> list[list[str]]:
        path = Path(self.env["ISTIOCTL_RECORD"])
        if not path.exists():
            return []
        return [json.loads(line)["args"] for line in path.read_text().splitlines()]


@pytest.fixture
def make_meshbot(
    make_playground: Callable[..., Playground], tmp_path: Path, _migrated_database: Path
) -> Iterator[Callable[..., Meshbot]]:
    """`make(seed)`: a playground with that seed and meshbot pointed at it with its own store."""
    clients: list[kubernetes.client.ApiClient] = []

    def make(seed: str = "article", *, leader: bool = True) -> Meshbot:
        pg = make_playground(seed)
        home = tmp_path / f"meshbot-{len(clients)}"
        home.mkdir()
        database = home / "meshbot.db"
        shutil.copyfile(_migrated_database, database)
        env = {
            "KUBECONFIG": str(pg.kubeconfig(home / "kubeconfig")),
            "MESHBOT_DATABASE_URL": f"sqlite:///{database}",
            # The stand-in istioctl first on PATH, recording its arguments and acting on this playground.
            "PATH": f"{STAND_IN_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PLAYGROUND_URL": pg.url,
            "ISTIOCTL_RECORD": str(home / "istioctl-calls.jsonl"),
        }
        api = kube_client_for(pg)
        clients.append(api)
        made = Meshbot(pg, home, env, api)
        if leader:
            made.lead_elsewhere()
        return made

    yield make
    for api in clients:
        api.close()


@pytest.fixture
def meshbot(make_meshbot: Callable[..., Meshbot]) -> Meshbot:
    """meshbot against the write-up's cluster: Istio installed, emojivoto-istio not yet injected."""
    return make_meshbot("article")
