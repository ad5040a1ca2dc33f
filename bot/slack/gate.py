"""What a request to ``/slack/events`` must be before Bolt sees it.

Bolt parses the body when it builds its request object — before it checks the signature — and
turns a timestamp into a number with ``int()``; either raising becomes a 500 with a traceback in
the log, for anyone who can reach the URL. So the route asks ``check`` first: a timestamp that is
not plain ASCII digits, or a bad signature, is a 401; a signed body that Bolt or the listeners
cannot read (not UTF-8, not JSON where JSON is due, a button press without its action or its user,
a slash command without its user) is a 400. Each refusal carries one line that names the problem
and never repeats the body: a body holds a ``response_url``, which is a credential for a while.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

# As Slack and Bolt: an older signature may be a replay.
MAX_AGE_SECONDS = 60 * 5
# int() would also take " 17", "1_7" and non-ASCII digits; Slack sends none of those.
_TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str  # the label on meshbot_slack_requests_rejected_total
    detail: str  # one line for the log and the response body

    @staticmethod
    def malformed(detail: str) -> Refusal:
        return Refusal(400, "malformed", detail)


def signed(secret: str, body: bytes, timestamp: str | None, signature: str | None) -> bool:
    """Slack's v0 signature, over the body's bytes. slack_sdk's verifier decodes the body and
    compares str digests, raising on a non-UTF-8 body or a non-ASCII signature header."""
    if timestamp is None or signature is None or not _TIMESTAMP.fullmatch(timestamp):
        return False
    if abs(time.time() - int(timestamp)) > MAX_AGE_SECONDS:
        return False
    return hmac.compare_digest(signature_of(secret, timestamp, body).encode(), signature.encode("utf-8"))


def signature_of(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 signature header value for a body sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return f"v0={digest.hexdigest()}"


def check(headers: Mapping[str, str], body: bytes, secret: str | None) -> Refusal | None:
    """Why this request must not reach Bolt, or None. ``secret`` None (Socket Mode) skips the
    signature; Socket Mode never uses this route anyway."""
    timestamp = headers.get("x-slack-request-timestamp")
    if timestamp is not None and not _TIMESTAMP.fullmatch(timestamp):
        return Refusal(401, "timestamp", "timestamp check failed")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    unsigned = secret is not None and not signed(secret, body, timestamp, headers.get("x-slack-signature"))
    if unsigned and not _ssl_check(text):
        return Refusal(401, "signature", "signature check failed")
    # Only signed requests get this far: what follows tells Slack, not strangers, what is wrong.
    if text is None:
        return Refusal.malformed("the body is not UTF-8")
    return _shape(text, headers.get("content-type"))


def _ssl_check(text: str | None) -> bool:
    # Slack's certificate probe; Bolt answers it before any signature check, and so do we.
    return text is not None and not text.startswith("{") and dict(parse_qsl(text)).get("ssl_check") == "1"


def _shape(text: str, content_type: str | None) -> Refusal | None:
    if not text:
        return Refusal.malformed("the body is empty")
    # Parsed as Bolt parses it (slack_bolt.request.internals.parse_body), so both see the same.
    if content_type == "application/json" or text.startswith("{"):
        return _event(text)
    form = dict(parse_qsl(text, keep_blank_values=True))
    if "payload" in form:
        return _interactive(form["payload"])
    if "command" in form and not _nonempty(form.get("user_id")):
        return Refusal.malformed("a slash command without user_id")
    return None


def _event(text: str) -> Refusal | None:
    try:
        body = json.loads(text)
    except ValueError:
        return Refusal.malformed("the body is not JSON")
    return None if isinstance(body, dict) else Refusal.malformed("the body is not a JSON object")


def _interactive(payload: str) -> Refusal | None:
    try:
        body = json.loads(payload)
    except ValueError:
        return Refusal.malformed("payload is not JSON")
    if not isinstance(body, dict):
        return Refusal.malformed("payload is not a JSON object")
    if body.get("type") != "block_actions":
        return None
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions:
        return Refusal.malformed("block_actions without actions")
    if not all(isinstance(a, dict) and _nonempty(a.get("action_id")) for a in actions):
        return Refusal.malformed("block_actions with an action without action_id")
    user = body.get("user")
    if not isinstance(user, dict) or not _nonempty(user.get("id")):
        return Refusal.malformed("block_actions without user.id")
    if any(body.get(key) is not None and not isinstance(body[key], dict) for key in ("channel", "team")):
        return Refusal.malformed("block_actions with a channel or team that is not an object")
    return None


def _nonempty(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def without_payload_word(
    headers: Mapping[str, str], body: bytes, secret: str | None
) -> tuple[str, dict[str, str | Sequence[str]]] | None:
    """Bolt reads any form body with the word "payload" anywhere in it as a button press
    (slack_bolt.request.internals.parse_body looks for the substring), so `/mesh status
    payload-api` reached no listener and Slack showed an error. Such a body — signed, checked by
    ``check`` first — is re-encoded without the word spelled out (``%70`` decodes to "p", so every
    field reads the same) and signed again with the app's own secret, for Bolt to check as usual.
    Returns the new body and headers, or None when the body needs nothing."""
    if secret is None:
        return None
    text = body.decode("utf-8")
    if "payload" not in text or text.startswith("{") or headers.get("content-type") == "application/json":
        return None
    form = parse_qsl(text, keep_blank_values=True)
    if any(key == "payload" for key, _ in form):
        return None
    plain = urlencode(form).replace("payload", "%70ayload")
    timestamp = headers.get("x-slack-request-timestamp", "")
    resigned: dict[str, str | Sequence[str]] = {k.lower(): v for k, v in headers.items()}
    resigned["x-slack-signature"] = signature_of(secret, timestamp, plain.encode())
    resigned.pop("content-length", None)
    return plain, resigned
