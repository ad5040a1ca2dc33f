"""Running a playground: a uvicorn server on a loopback port in a background thread, a kubeconfig."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
import yaml

from playground.apiserver import ApiServer
from playground.hooks import Hooks
from playground.seeds import apply_seed
from playground.server import PlaygroundApp


@dataclass
class Playground:
    """A started playground: its API, hooks and address; stop() ends it."""

    api: ApiServer
    hooks: Hooks
    host: str
    port: int
    _server: _Server = field(repr=False)
    _app: PlaygroundApp = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def kubeconfig(self, path: Path, *, token: str | None = None, context: str = "playground") -> Path:
        user: dict[str, str] = {"token": token} if token else {}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "playground", "cluster": {"server": self.url}}],
            "users": [{"name": "playground-user", "user": user}],
            "contexts": [
                {
                    "name": context,
                    "context": {
                        "cluster": "playground",
                        "user": "playground-user",
                        "namespace": "default",
                    },
                }
            ],
            "current-context": context,
            "preferences": {},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def stop(self) -> None:
        """Stops accepting connections and ends open watches; the thread finishes on its own.

        Waiting only for the listener to close keeps a test's teardown short: uvicorn's graceful
        shutdown of idle keep-alive connections adds a fixed 0.1 s that nothing needs to wait for.
        """
        self._server.request_exit(self._app.shutdown)
        if not self._server.listener_closed.wait(timeout=10):
            self._thread.join(timeout=10)

    def __enter__(self) -> Playground:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listener_closed = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        await super().startup(sockets)

    def request_exit(self, before: Callable[[], None]) -> None:
        """From any thread: run `before` on the server's loop, then leave the main loop at once."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            self.listener_closed.set()
            return
        try:
            loop.call_soon_threadsafe(before)
            loop.call_soon_threadsafe(wake.set)
        except RuntimeError:  # the loop closed in between
            self.listener_closed.set()

    async def main_loop(self) -> None:
        # uvicorn polls should_exit every 0.1 s; waiting on an event lets stop() return at once.
        # Ticking each second still refreshes the Date header, as uvicorn's own loop does.
        assert self._wake is not None
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        self.listener_closed.set()
        await super().shutdown(sockets)


@functools.lru_cache(maxsize=8)
def _seeded(seed: str, random_seed: int) -> bytes:
    # Seeding runs every write through admission and the controller (~0.3 s for `article`); tests
    # start a playground each, so each seed runs once per process and later starts copy its result.
    api = ApiServer(seed=random_seed)
    apply_seed(api, seed)
    return api.snapshot()


# Server threads that may still be shutting down after stop() returned.
_threads: list[threading.Thread] = []


@atexit.register
def _join_stopping_servers() -> None:
    # Daemon threads are killed mid-shutdown at interpreter exit; let them finish cleanly first.
    for thread in _threads:
        thread.join(timeout=2)


def start(seed: str = "empty", *, host: str = "127.0.0.1", port: int = 0, random_seed: int = 0) -> Playground:
    """Seeds a fresh cluster and serves it; returns once the server accepts connections."""
    api = ApiServer(seed=random_seed)
    api.restore(_seeded(seed, random_seed))
    hooks = Hooks()
    served = PlaygroundApp(api, hooks)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: without it Nagle meets urllib3's delayed ACK and
    # every request on a kept-alive connection waits ~40 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    config = uvicorn.Config(
        served.app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1
    )
    server = _Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="playground", daemon=True)
    thread.start()
    _threads[:] = [t for t in _threads if t.is_alive()]
    _threads.append(thread)
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the playground server failed to start")
        threading.Event().wait(0.005)
    return Playground(api, hooks, host, sock.getsockname()[1], server, served, thread)
