"""Slack user group membership for role checks, read with usergroups.users.list and cached.

Authorization runs in the pipeline's worker thread, so this is synchronous. A TTL keeps a change
of membership effective within minutes without asking Slack on every command; when Slack cannot
be reached, the last answer is used rather than locking everyone out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

log = logging.getLogger(__name__)


class UserGroups:
    def __init__(
        self, client: WebClient, *, ttl_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[tuple[str | None, str], tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def __call__(self, team_id: str | None, group: str, user_id: str) -> bool:
        return user_id in self.members(team_id, group)

    def members(self, team_id: str | None, group: str) -> frozenset[str]:
        key = (team_id, group)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and self._clock() - cached[0] < self._ttl:
            return cached[1]
        try:
            response = self._client.usergroups_users_list(usergroup=group)
            members = frozenset(str(u) for u in (response.get("users") or []))
        except (SlackApiError, SlackClientError, OSError) as exc:
            if cached is not None:
                log.warning(
                    "could not refresh user group %s (%s); using the membership read earlier", group, exc
                )
                return cached[1]
            log.warning("could not read user group %s: %s", group, exc)
            raise
        with self._lock:
            self._cache[key] = (self._clock(), members)
        return members
