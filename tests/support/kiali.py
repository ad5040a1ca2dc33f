"""A stand-in Kiali: a real HTTP server on 127.0.0.1 answering Kiali's graph and health routes
under its web root (/kiali) the way Kiali does, from the real response in tests/data.

Failures as Kiali shows them: 401 with ``{"error": …}`` when a token is required and missing or
wrong, 404 ``{"error": "namespaces \\"x\\" not found"}`` for a namespace it does not know, a 500
with Kiali's JSON error when told to fail, and a hang (no answer until released) for time-outs.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

GRAPH_FIXTURE = Path(__file__).resolve().parents[1] / "data" / "kiali-workload-graph.example.json"
WEB_ROOT = "/kiali"


class StubKiali:
    def __init__(self, graph: dict[str, Any] | None = None, *, token: str | None = None) -> None:
        self.graph = graph if graph is not None else json.loads(GRAPH_FIXTURE.read_text())
        self.token = token
        # namespace → workload → inbound {protocol: {code: rate}}, Kiali's health shape.
        self.health: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
        self.failing = False
        self.released = threading.Event()
        self.hanging = False
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def start(self) -> StubKiali:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{WEB_ROOT}"

    def namespaces(self) -> set[str]:
        return {str(n["data"].get("namespace")) for n in self.graph["elements"]["nodes"]} | set(self.health)

    def answer(self, path: str, query: dict[str, str], authorization: str | None) -> tuple[int, Any]:
        if self.token is not None and authorization != f"Bearer {self.token}":
            return 401, {"error": "Unauthorized: the token is missing, invalid or expired"}
        if self.failing:
            return 500, {"error": "Error while fetching graph: could not reach Prometheus", "detail": "…"}
        names = [n for n in query.get("namespaces", "").split(",") if n]
        unknown = [n for n in names if n not in self.namespaces()]
        if not names:
            return 400, {
                "error": "at least one namespace must be specified via the namespaces query parameter."
            }
        if unknown:
            return 404, {"error": f'namespaces "{unknown[0]}" not found'}
        if path == f"{WEB_ROOT}/api/namespaces/graph":
            return 200, self.graph
        if path == f"{WEB_ROOT}/api/clusters/health":
            return 200, {
                ns: {
                    workload: {"workloadStatus": None, "requests": {"inbound": inbound, "outbound": {}}}
                    for workload, inbound in self.health.get(ns, {}).items()
                }
                for ns in names
            }
        return 404, {"error": "Not Found"}


def _handler(stub: StubKiali) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            stub.requests.append((url.path, query))
            if stub.hanging:
                stub.released.wait(30)
                return
            status, body = stub.answer(url.path, query, self.headers.get("Authorization"))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
