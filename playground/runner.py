"""Running a playground: a uvicorn server on a loopback port in a background thread, a kubeconfig."""

from __future__ import annotations

import socket
import threading
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
    _server: uvicorn.Server = field(repr=False)
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
        self._server.should_exit = True
        loop_closer = getattr(self._server, "_playground_loop", None)
        if loop_closer is not None:
            loop_closer.call_soon_threadsafe(self.api.close_watches)
        self._thread.join(timeout=10)

    def __enter__(self) -> Playground:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        import asyncio

        self._playground_loop = asyncio.get_running_loop()  # type: ignore[attr-defined]
        await super().startup(sockets)


def start(seed: str = "empty", *, host: str = "127.0.0.1", port: int = 0, random_seed: int = 0) -> Playground:
    """Seeds a fresh cluster and serves it; returns once the server accepts connections."""
    api = ApiServer(seed=random_seed)
    apply_seed(api, seed)
    hooks = Hooks()
    app = PlaygroundApp(api, hooks).app
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1
    )
    server = _Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="playground", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the playground server failed to start")
        threading.Event().wait(0.005)
    return Playground(api, hooks, host, sock.getsockname()[1], server, thread)
