"""A throwaway Prometheus (Debian's package) on 127.0.0.1 with a temp storage dir: `meshbot demo`
scrapes the playground's simulated traffic with it, and the tests use it backfilled from
OpenMetrics for exact numbers, or scraping live targets. It lives here, not under tests/, because
the demo ships with meshbot and cannot import the tests.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml


class PrometheusUnavailable(RuntimeError):
    """The binaries are missing or the server would not start."""


def binary(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if not found:
        raise PrometheusUnavailable(
            f"{name} not found: install Debian's `prometheus` package "
            "(`make demo` and `make test` do this via scripts/ensure-debs.sh)"
        )
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def backfill(lines: Iterable[str], data_dir: Path) -> None:
    """Writes OpenMetrics lines to a file and turns them into TSDB blocks in ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    source = data_dir.parent / f"{data_dir.name}.om"
    with source.open("w") as out:
        for line in lines:
            out.write(line + "\n")
    result = subprocess.run(
        [binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    source.unlink()
    if result.returncode != 0:
        raise PrometheusUnavailable(f"promtool backfill failed: {result.stderr[-2000:]}")


@dataclass
class PrometheusServer:
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:  # noqa: S310 (loopback)
            return bool(response.status == 200)
    except OSError:
        return False


@contextmanager
def running_prometheus(
    *,
    data_dir: Path | None = None,
    scrape: Sequence[str] = (),
    metrics_path: str = "/metrics",
    scrape_interval: str = "1s",
) -> Iterator[PrometheusServer]:
    """Start Prometheus on a loopback port over ``data_dir`` (a fresh temp dir when None), scraping
    the ``host:port`` targets given; stop it and remove what it created afterwards."""
    base = Path(tempfile.mkdtemp(prefix="meshbot-prom-"))
    storage = data_dir or base / "data"
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {"job_name": "mesh", "metrics_path": metrics_path, "static_configs": [{"targets": list(scrape)}]}
        ]
        if scrape
        else [],
    }
    (base / "prometheus.yml").write_text(yaml.safe_dump(config))
    server: PrometheusServer | None = None
    try:
        for attempt in range(3):
            port = _free_port()
            log = (base / "log").open("wb")
            process = subprocess.Popen(
                [
                    binary("prometheus"),
                    f"--config.file={base / 'prometheus.yml'}",
                    f"--storage.tsdb.path={storage}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            server = PrometheusServer(process, port, storage)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and process.poll() is None and not _ready(server.url):
                time.sleep(0.1)
            if process.poll() is None and _ready(server.url):
                break
            server.stop()
            if attempt == 2:
                raise PrometheusUnavailable(
                    f"prometheus did not start:\n{(base / 'log').read_text(errors='replace')[-2000:]}"
                )
        assert server is not None
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
