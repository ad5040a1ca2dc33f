"""Fixtures shared by every test package."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from core.store import Store
from core.store.migrate import upgrade
from playground import runner
from playground.runner import Playground

# The resilience suite's figures are counted in every worker and printed once at the end of the run.
pytest_plugins = ("tests.resilience.figures",)


@pytest.fixture(autouse=True)
def _clean_meshbot_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A developer's own MESHBOT_* settings must not leak into what a test sees.
    for key in list(os.environ):
        if key.startswith("MESHBOT_") or key.startswith("SLACK_") or key == "KUBECONFIG":
            monkeypatch.delenv(key, raising=False)
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    yield


@pytest.fixture
def make_playground() -> Iterator[Callable[..., Playground]]:
    """Starts playgrounds on ephemeral loopback ports (any seed) and stops them after the test."""
    started: list[Playground] = []

    def make(seed: str = "article", **kwargs: Any) -> Playground:
        pg = runner.start(seed, **kwargs)
        started.append(pg)
        return pg

    yield make
    for pg in started:
        pg.stop()


@pytest.fixture
def playground(make_playground: Callable[..., Playground]) -> Playground:
    """The seed write-up's cluster (Istio installed, emojivoto-istio not yet labelled)."""
    return make_playground("article")


def kube_client_for(pg: Playground, token: str | None = None) -> kubernetes.client.ApiClient:
    """An official-client ApiClient pointed at a playground, ignoring any proxy settings."""
    config = kubernetes.client.Configuration()
    config.host = pg.url
    config.proxy = None
    if token:
        config.api_key = {"authorization": f"Bearer {token}"}
    return kubernetes.client.ApiClient(config)


@pytest.fixture
def kube(playground: Playground) -> Iterator[kubernetes.client.ApiClient]:
    with kube_client_for(playground) as api_client:
        yield api_client


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Migrating costs more than most tests: migrate once per session, copy the file per test.
    path = tmp_path_factory.mktemp("store-template") / "meshbot.db"
    store = Store.from_url(f"sqlite:///{path}")
    upgrade(store.engine)
    store.dispose()
    return path


@pytest.fixture
def store(tmp_path: Path, _migrated_template: Path) -> Iterator[Store]:
    """A migrated SQLite store of this test's own."""
    path = tmp_path / "meshbot.db"
    shutil.copyfile(_migrated_template, path)
    store = Store.from_url(f"sqlite:///{path}")
    yield store
    store.dispose()
