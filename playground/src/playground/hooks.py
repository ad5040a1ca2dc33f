"""Test hooks: what a test can do to the playground that a real API server does on a bad day.

Authentication (401 without a valid token, 403 for a read-only one), the next N requests on a
path failing with a status or hanging, added latency — and a log of every request, so a test can
check exactly what a client sent.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from playground.rbac import Authorizer

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass
class FaultRule:
    path: re.Pattern[str]
    remaining: int
    method: str | None = None
    code: int = 500
    hang_seconds: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and (self.method is None or self.method == method)
            and bool(self.path.search(path))
        )


@dataclass(frozen=True)
class Grant:
    user: str
    read_only: bool = False
    # What RBAC (Hooks.authorizer) sees besides the user: e.g. a ServiceAccount's groups.
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    query: str
    content_type: str
    status: int
    body: Any = None


@dataclass
class Hooks:
    tokens: dict[str, Grant] | None = None
    faults: list[FaultRule] = field(default_factory=list)
    latency_seconds: float = 0.0
    requests: list[RequestRecord] = field(default_factory=list)
    # Kubernetes' RBAC over authenticated tokens (playground.rbac); None: tokens decide alone.
    authorizer: Authorizer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def require_tokens(self, tokens: dict[str, Grant] | None) -> None:
        """From now on only these bearer tokens are accepted (None: anyone, as on a fresh start)."""
        with self._lock:
            self.tokens = dict(tokens) if tokens is not None else None

    def fail_next(
        self, path_pattern: str, count: int = 1, *, code: int = 500, method: str | None = None
    ) -> None:
        with self._lock:
            self.faults.append(FaultRule(re.compile(path_pattern), count, method, code))

    def hang_next(
        self, path_pattern: str, count: int = 1, *, seconds: float = 30.0, method: str | None = None
    ) -> None:
        with self._lock:
            self.faults.append(FaultRule(re.compile(path_pattern), count, method, 0, seconds))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()
            self.latency_seconds = 0.0

    def take_fault(self, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self.faults:
                if rule.matches(method, path):
                    rule.remaining -= 1
                    return rule
            return None

    def record(self, entry: RequestRecord) -> None:
        with self._lock:
            self.requests.append(entry)
            if len(self.requests) > 10_000:
                del self.requests[:5_000]

    def writes(self) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]


def status_body(code: int, message: str, reason: str | None = None) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or _REASONS.get(code, "Unknown"),
        "code": code,
    }
