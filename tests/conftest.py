"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _clean_meshbot_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A developer's own MESHBOT_* settings must not leak into what a test sees.
    for key in list(os.environ):
        if key.startswith("MESHBOT_") or key.startswith("SLACK_") or key == "KUBECONFIG":
            monkeypatch.delenv(key, raising=False)
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    yield
