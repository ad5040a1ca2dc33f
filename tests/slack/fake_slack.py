"""A fake Slack Web API: a real HTTP server on 127.0.0.1, in a thread, recording every call.

It answers the methods meshbot uses (auth.test, chat.postMessage, chat.update,
chat.postEphemeral, usergroups.users.list, users.info), the ``response_url`` posts of slash
commands and button presses, at ``/response/<name>``, and the three steps of ``files_upload_v2``:
files.getUploadURLExternal hands out an ``upload_url`` on this server (``/upload/v1/<file id>``),
the bytes are POSTed there (answered ``OK - <length>`` as Slack's file host does), and
files.completeUploadExternal shares the uploaded files in a channel or thread. Tests script
failures: a 429 with Retry-After for the next N calls of a method, an ``{"ok": false}`` refusal,
a channel the bot is not in, or Slack being down (the connection closes without an answer).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import WSMsgType, web

TEAM_ID = "T0TEST"
BOT_USER_ID = "U0BOT"


@dataclass
class Call:
    method: str  # a Web API method, or "response_url"
    params: dict[str, Any]
    headers: dict[str, str]
    path: str
    at: float = field(default_factory=time.monotonic)
    status: int = 200

    @property
    def text(self) -> str:
        return str(self.params.get("text") or "")

    @property
    def blocks(self) -> list[dict[str, Any]]:
        raw = self.params.get("blocks") or []
        return json.loads(raw) if isinstance(raw, str) else list(raw)

    def all_text(self) -> str:
        """The fallback text and every text in the blocks, for assertions on what people see."""
        return self.text + "\n" + json.dumps(self.blocks, ensure_ascii=False)


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.usergroups: dict[str, list[str]] = {}
        self.not_in_channel: set[str] = set()
        self.down = False
        # Handed out by apps.connections.open (see FakeSocketMode).
        self.socket_url: str | None = None
        self._scripted: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self._ts = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._refusals: dict[str, str] = {}
        # file id → what files.getUploadURLExternal was told, and the bytes once uploaded.
        self.files: dict[str, UploadedFile] = {}
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        # A short poll keeps stop() (and each test's teardown) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-slack", daemon=True
        )

    # ------------------------------------------------------------ lifecycle and addresses

    def start(self) -> FakeSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/"

    def response_url(self, name: str) -> str:
        return f"{self.base}/response/{name}"

    # ------------------------------------------------------------ scripting

    def script(self, method: str, status: int = 429, *, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with ``status`` (429: with Retry-After;
        0: read the request, then close the connection without an answer)."""
        headers = {"Retry-After": str(retry_after)} if status == 429 else {}
        with self._changed:
            self._scripted.setdefault(method, []).extend([(status, headers)] * times)

    def refuse(self, method: str, error: str) -> None:
        """Answer the next call of ``method`` as Slack refuses one: 200, ``{"ok": false, "error": …}``."""
        with self._changed:
            self._refusals[method] = error

    # ------------------------------------------------------------ what was called

    def shared_files(self) -> list[UploadedFile]:
        """Files completeUploadExternal shared somewhere, in the order they were shared."""
        with self._changed:
            return sorted((f for f in self.files.values() if f.channel), key=lambda f: f.shared_at)

    def calls_to(self, method: str) -> list[Call]:
        with self._changed:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, predicate: Callable[[list[Call]], bool], timeout: float = 10.0) -> list[Call]:
        """Wait until ``predicate(calls)`` holds; fails the test with what was called otherwise."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(list(self.calls)):
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [f"{c.method} {c.status} {c.text[:80]!r}" for c in self.calls]
                    raise AssertionError(f"Slack never saw what the test waited for; calls: {seen}")
                self._changed.wait(left)
            return list(self.calls)

    def wait_for_call(
        self,
        method: str,
        contains: str = "",
        *,
        count: int = 1,
        path: str | None = None,
        timeout: float = 10.0,
    ) -> list[Call]:
        """Wait for ``count`` successful calls of ``method`` showing ``contains`` (and sent to
        ``path``); returns all such calls so far."""

        def matching(calls: list[Call]) -> list[Call]:
            return [c for c in _matching(calls, method, contains) if path is None or c.path == path]

        return matching(self.wait_for(lambda calls: len(matching(calls)) >= count, timeout))

    # ------------------------------------------------------------ answering

    def _record(self, call: Call) -> None:
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    def _scripted_status(self, method: str) -> tuple[int, dict[str, str]] | None:
        with self._changed:
            queue = self._scripted.get(method)
            return queue.pop(0) if queue else None

    def next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        with self._changed:
            refusal = self._refusals.pop(method, None)
        if refusal is not None:
            return {"ok": False, "error": refusal}
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://test.slack.com/",
                "team": "Test",
                "team_id": TEAM_ID,
                "user": "meshbot",
                "user_id": BOT_USER_ID,
                "bot_id": "B0BOT",
            }
        if method == "chat.postMessage":
            channel = str(params.get("channel"))
            if channel in self.not_in_channel:
                return {"ok": False, "error": "not_in_channel"}
            ts = self.next_ts()
            return {
                "ok": True,
                "channel": channel,
                "ts": ts,
                "message": {"text": params.get("text"), "ts": ts},
            }
        if method == "chat.update":
            return {"ok": True, "channel": params.get("channel"), "ts": params.get("ts")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self.next_ts()}
        if method == "usergroups.users.list":
            group = str(params.get("usergroup"))
            if group not in self.usergroups:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": self.usergroups[group]}
        if method == "apps.connections.open":
            if self.socket_url is None:
                return {"ok": False, "error": "socket_mode_not_enabled"}
            return {"ok": True, "url": self.socket_url}
        if method == "files.getUploadURLExternal":
            return self.upload_url_for(params)
        if method == "files.completeUploadExternal":
            return self.complete_upload(params)
        if method == "users.info":
            user = str(params.get("user"))
            return {
                "ok": True,
                "user": {"id": user, "team_id": TEAM_ID, "name": user.lower(), "real_name": user},
            }
        return {"ok": False, "error": "unknown_method"}

    def upload_url_for(self, params: dict[str, Any]) -> dict[str, Any]:
        """files.getUploadURLExternal: filename and a positive length are required."""
        filename, length = params.get("filename"), str(params.get("length") or "")
        if not filename or not length.isdigit() or int(length) <= 0:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F0{next(self._file_ids):08d}"
        with self._changed:
            self.files[file_id] = UploadedFile(file_id, str(filename), int(length))
        return {"ok": True, "upload_url": f"{self.base}/upload/v1/{file_id}", "file_id": file_id}

    def receive_upload(self, file_id: str, content: bytes) -> tuple[int, str]:
        with self._changed:
            found = self.files.get(file_id)
            if found is None:
                return 404, "Not Found"
            found.content = content
        return 200, f"OK - {len(content)}"

    def complete_upload(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            listed = json.loads(str(params.get("files") or ""))
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        channel = params.get("channel_id")
        if channel and str(channel) in self.not_in_channel:
            return {"ok": False, "error": "not_in_channel"}
        shared = []
        with self._changed:
            for item in listed:
                found = self.files.get(str(item.get("id")))
                # Slack refuses a file whose bytes never arrived, or that did not match the length.
                if found is None or found.content is None or len(found.content) != found.length:
                    return {"ok": False, "error": "file_not_found"}
                found.title = str(item.get("title") or found.filename)
                if channel:
                    found.channel = str(channel)
                    found.thread_ts = str(params["thread_ts"]) if params.get("thread_ts") else None
                    found.shared_at = time.monotonic()
                shared.append({"id": found.id, "name": found.filename, "title": found.title})
            self._changed.notify_all()
        return {"ok": True, "files": shared}


@dataclass
class UploadedFile:
    id: str
    filename: str
    length: int
    content: bytes | None = None
    title: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    shared_at: float = 0.0


def _matching(calls: list[Call], method: str, contains: str) -> list[Call]:
    return [c for c in calls if c.method == method and c.status == 200 and contains in c.all_text()]


def _handler(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if url.path.startswith("/upload/v1/"):
                self._upload(url.path, raw)
                return
            params: dict[str, Any] = {k: v[0] for k, v in parse_qs(url.query).items()}
            kind = self.headers.get("Content-Type", "")
            if raw and "json" in kind:
                params.update(json.loads(raw))
            elif raw:
                params.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
            method = "response_url" if url.path.startswith("/response/") else url.path.removeprefix("/api/")
            if fake.down:
                fake._record(Call(method, params, dict(self.headers), url.path, status=0))
                # Slack unreachable: close without a word.
                self.close_connection = True
                return
            scripted = fake._scripted_status(method)
            if scripted is not None:
                status, headers = scripted
                fake._record(Call(method, params, dict(self.headers), url.path, status=status))
                if status == 0:
                    # Received, then gone: the caller cannot know whether it happened.
                    self.close_connection = True
                    return
                self._send(
                    status, {"ok": False, "error": "ratelimited" if status == 429 else "fatal_error"}, headers
                )
                return
            fake._record(Call(method, params, dict(self.headers), url.path))
            if method == "response_url":
                self._send_text(200, "ok")
            else:
                self._send(200, fake.answer(method, params), {})

        def _upload(self, path: str, raw: bytes) -> None:
            file_id = path.removeprefix("/upload/v1/")
            params = {"file_id": file_id, "length": len(raw)}
            scripted = fake._scripted_status("upload")
            if scripted is not None:
                status = scripted[0]
                fake._record(Call("upload", params, dict(self.headers), path, status=status))
                if status == 0:
                    self.close_connection = True
                else:
                    self._send_text(status, "Internal Server Error")
                return
            status, text = fake.receive_upload(file_id, raw)
            fake._record(Call("upload", params, dict(self.headers), path, status=status))
            self._send_text(status, text)

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _send_text(self, status: int, text: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


class FakeSocketMode:
    """Slack's Socket Mode end: a websocket server on 127.0.0.1 (aiohttp, its own loop and thread).

    Point ``FakeSlack.socket_url`` at ``url``: apps.connections.open then hands it out. The server
    says hello to the client, pushes the envelopes a test sends, and records the client's acks.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.acks: list[dict[str, Any]] = []
        self.connected = threading.Event()
        self._changed = threading.Condition()
        self._outbox: asyncio.Queue[dict[str, Any]] | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._thread = threading.Thread(target=self.loop.run_forever, name="fake-socket-mode", daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link"

    def start(self) -> FakeSocketMode:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result(5)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    def send(self, envelope: dict[str, Any]) -> None:
        assert self._outbox is not None
        asyncio.run_coroutine_threadsafe(self._outbox.put(envelope), self.loop).result(5)

    def wait_for_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [a for a in self.acks if a.get("envelope_id") == envelope_id]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no ack for envelope {envelope_id}; acks: {self.acks}")
                self._changed.wait(left)

    async def _serve(self) -> None:
        self._outbox = asyncio.Queue()
        app = web.Application()
        app.router.add_get("/link", self._link)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0MESH"}})
        self.connected.set()
        assert self._outbox is not None
        outbox = self._outbox

        async def push() -> None:
            while True:
                await ws.send_json(await outbox.get())

        pusher = asyncio.ensure_future(push())
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    with self._changed:
                        self.acks.append(json.loads(message.data))
                        self._changed.notify_all()
        finally:
            pusher.cancel()
        return ws
