"""CLI start-up: `meshbot run help` wall time beside `kubectl version --client`.

    python -m bench startup [--quick] [--runs 10]

Both run as whole processes, alternately, so a busy moment of the machine hits both alike. Without
kubectl on PATH the reference is `python -c pass` (the interpreter's own start). Figures are
returned (and printed), never asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def wall(command: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - began


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench startup", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    runs = 3 if args.quick else args.runs
    meshbot = str(Path(sys.executable).with_name("meshbot"))
    kubectl = shutil.which("kubectl")
    reference = [kubectl, "version", "--client"] if kubectl else [sys.executable, "-c", "pass"]
    with tempfile.TemporaryDirectory(prefix="meshbot-startup-") as directory:
        # `run help` needs a store: an empty SQLite file, migrated on first use.
        env = {
            **os.environ,
            "MESHBOT_DATABASE_URL": f"sqlite:///{directory}/startup.db",
            "MESHBOT_AUTO_MIGRATE": "true",
        }
        wall([meshbot, "run", "help"], env)  # migrate, and warm the page cache
        ours = [wall([meshbot, "run", "help"], env) for _ in range(runs)]
        theirs = [wall(reference, env) for _ in range(runs)]
    result = {
        "meshbot_ms": statistics.median(ours) * 1000,
        "reference_ms": statistics.median(theirs) * 1000,
        "reference": " ".join(Path(reference[0]).name if i == 0 else p for i, p in enumerate(reference)),
        "runs": runs,
    }
    print(
        f"startup: meshbot run help {result['meshbot_ms']:.0f} ms, {result['reference']} "
        f"{result['reference_ms']:.0f} ms (median of {runs})"
    )
    return result
