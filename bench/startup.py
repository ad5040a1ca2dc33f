"""CLI start-up: `meshbot run help` wall time beside `kubectl version --client`.

    python -m bench startup [--quick] [--runs 10]

Both run as whole processes, alternately, so a busy moment of the machine hits both alike. Without
kubectl on PATH the reference is `python -c pass` (the interpreter's own start). `run help` talks
to a playground cluster (in this process) and an empty SQLite store: without a cluster it would
stop at "cannot load the Kubernetes configuration" and measure an error. Figures are returned (and
printed), never asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def wall(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and the child's CPU time (user + system): on a machine shared with other work the
    wall time mostly measures the queue for a core, the CPU time what the command itself costs."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    elapsed = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench startup", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    runs = 3 if args.quick else args.runs
    meshbot = str(Path(sys.executable).with_name("meshbot"))
    kubectl = shutil.which("kubectl")
    reference = [kubectl, "version", "--client"] if kubectl else [sys.executable, "-c", "pass"]
    from playground import runner

    with (
        tempfile.TemporaryDirectory(prefix="meshbot-startup-") as directory,
        runner.start("article") as pg,
    ):
        # `run help` needs a store: an empty SQLite file, migrated on first use.
        env = {
            **os.environ,
            "KUBECONFIG": str(pg.kubeconfig(Path(directory) / "kubeconfig")),
            "MESHBOT_DATABASE_URL": f"sqlite:///{directory}/startup.db",
            "MESHBOT_AUTO_MIGRATE": "true",
        }
        first = subprocess.run([meshbot, "run", "help"], env=env, capture_output=True, text=True, check=False)
        if first.returncode != 0:  # migrates, and warms the page cache
            raise SystemExit(f"meshbot run help failed: {first.stderr.strip()}")
        ours: list[tuple[float, float]] = []
        theirs: list[tuple[float, float]] = []
        for _ in range(runs):
            ours.append(wall([meshbot, "run", "help"], env))
            theirs.append(wall(reference, env))
    result = {
        "meshbot_ms": statistics.median(w for w, _ in ours) * 1000,
        "reference_ms": statistics.median(w for w, _ in theirs) * 1000,
        "meshbot_cpu_ms": statistics.median(c for _, c in ours) * 1000,
        "reference_cpu_ms": statistics.median(c for _, c in theirs) * 1000,
        "reference": " ".join(Path(reference[0]).name if i == 0 else p for i, p in enumerate(reference)),
        "runs": runs,
    }
    print(
        f"startup: meshbot run help {result['meshbot_ms']:.0f} ms (CPU {result['meshbot_cpu_ms']:.0f} ms), "
        f"{result['reference']} {result['reference_ms']:.0f} ms (CPU {result['reference_cpu_ms']:.0f} ms), "
        f"median of {runs}"
    )
    return result
