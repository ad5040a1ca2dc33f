"""meshbot's own errors for cluster operations, with messages a person in a chat can act on.

API errors from the official client are mapped here once, so handlers never see ApiException and
the HTTP library could change without touching them.

The client's exception classes are imported when a call is made, never with this module: every
command imports MeshError, and importing anything of the client costs a CLI tenths of a second
(the package's ``__init__`` loads all of it), which ``help`` or ``audit`` should not pay.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as Urllib3Error


class MeshError(Exception):
    """A cluster operation that did not happen; `str()` is the message to show."""


class NotFound(MeshError):
    pass


class Conflict(MeshError):
    """Someone else changed the object between our read and our write, more times than we retry."""


class Invalid(MeshError):
    """The API server rejected what we sent (400/422): a bug in meshbot or an unexpected schema."""


class Forbidden(MeshError):
    """meshbot's own credentials may not do this (401/403): a deployment problem, not the user's."""


class Unavailable(MeshError):
    """The API server did not answer, or answered 5xx/429: worth retrying later."""


def api_message(exc: ApiException) -> str:
    """The `message` of a Kubernetes Status body, or the HTTP reason when there is none."""
    try:
        body = json.loads(exc.body or "")
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
    except (ValueError, TypeError):
        pass
    return f"{exc.status} {exc.reason}".strip()


def from_api(exc: ApiException, doing: str) -> MeshError:
    """Maps an ApiException to a MeshError saying what we were doing and what the server said."""
    message = f"{doing}: {api_message(exc)}"
    status = exc.status or 0
    if status == 404:
        return NotFound(message)
    if status == 409:
        return Conflict(message)
    if status in (400, 415, 422):
        return Invalid(message)
    if status in (401, 403):
        return Forbidden(
            f"{message} (meshbot's Kubernetes credentials lack permission; see deploy/ for its RBAC)"
        )
    return Unavailable(message)


def from_transport(exc: Urllib3Error | OSError, doing: str) -> Unavailable:
    why = exc.__class__.__name__
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        # MaxRetryError wraps what really happened (refused, timed out, name not resolved).
        why = reason.__class__.__name__
    return Unavailable(
        f"{doing}: the Kubernetes API server{_url_of(exc)} is unreachable ({why}); check that it runs "
        "and that the kubeconfig's server URL is right"
    )


def _url_of(exc: Urllib3Error | OSError) -> str:
    """` at <scheme>://<host>:<port>` when urllib3 says which server it tried, else nothing."""
    pool = getattr(exc, "pool", None)
    host = getattr(pool, "host", None)
    if pool is None or not host:
        return ""
    port = getattr(pool, "port", None)
    return f" at {getattr(pool, 'scheme', 'https')}://{host}" + (f":{port}" if port else "")


@contextmanager
def calling(doing: str) -> Iterator[None]:
    """Runs one API call, turning client and transport errors into MeshErrors that say `doing`."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as Urllib3Error

    try:
        yield
    except ApiException as exc:
        raise from_api(exc, doing) from None
    except (Urllib3Error, OSError) as exc:
        raise from_transport(exc, doing) from None
