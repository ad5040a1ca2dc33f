"""``python -m bench [--quick]`` runs every benchmark, prints one table and writes
bench/results.json; ``python -m bench NAME [ARGS...]`` runs one (``bench.NAME.main(ARGS)``).

Every figure stands beside a reference measured in the same run, as a ratio: absolute times
drift on a shared machine, ratios much less. ``--quick`` is a smoke run with small counts.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import pkgutil
import sys
from pathlib import Path
from typing import Any

import bench

RESULTS = Path(bench.__file__).with_name("results.json")
# The order of the table: what a person asks about first.
ORDER = ("load", "scale", "startup", "expiry", "audit")


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_"))


def ratio(value: float, reference: float) -> str:
    if not reference or math.isnan(value) or math.isnan(reference):
        return "—"
    return f"{value / reference:.1f}×"


def table(results: dict[str, Any]) -> list[str]:
    rows: list[tuple[str, str, str, str]] = []
    load = results.get("load") or {}
    for row in load.get("ack", []):
        m, b = row["meshbot"], row["bare"]
        rows.append(
            (
                f"ack `{row['command']}` at {row['rate']:g}/s",
                f"p50 {m['p50_ms']:.0f} ms, p99 {m['p99_ms']:.0f} ms; busy {m['busy']}/{m['sent']}, "
                f"errors {m['errors']}",
                f"bare FastAPI + signature p99 {b['p99_ms']:.0f} ms",
                ratio(m["p99_ms"], b["p99_ms"]),
            )
        )
    if "effect" in load:
        e = load["effect"]
        rows.append(
            (
                "`fault delay 3s web-svc` to VirtualService patched",
                f"{e['meshbot_ms']:.0f} ms (median of {e['rounds']})",
                f"kubernetes client RMW + 1 store write {e['direct_ms']:.0f} ms",
                ratio(e["meshbot_ms"], e["direct_ms"]),
            )
        )
    if "clear_under_flood" in load:
        c, e = load["clear_under_flood"], load["effect"]
        flood = c["flood"]
        rows.append(
            (
                f"`fault clear` to effect during {c['flood_rate']:g}/s `status`",
                f"median {c['clear_ms']:.0f} ms, max {c.get('clear_max_ms', c['clear_ms']):.0f} ms of "
                f"{len(c.get('samples_ms', [0]))} (flood: busy {flood.get('busy')}/{flood.get('sent')})",
                f"`fault clear` idle {e['clear_ms']:.0f} ms",
                ratio(c["clear_ms"], e["clear_ms"]),
            )
        )
    if "rss_idle_mb" in load:
        rows.append(
            (
                "RSS of meshbot serve, idle / after the load",
                f"{load['rss_idle_mb']:.0f} MB / {load['rss_after_mb']:.0f} MB",
                f"bare endpoint {load['rss_bare_mb']:.0f} MB",
                ratio(load["rss_after_mb"], load["rss_idle_mb"]) + " after/idle",
            )
        )
    scale = results.get("scale")
    if scale:
        rows.append(
            (
                f"`status`: {scale['services']} services, {scale['pods']} pods, "
                f"{scale['virtualservices']} VS, {scale['experiments']} faults",
                f"{scale['status_ms']:.0f} ms, {scale['status_calls']} API calls, "
                f"{scale['slack_blocks']} Slack blocks",
                f"the same lists, typed client: {scale['direct_ms']:.0f} ms, {scale['direct_calls']} calls",
                ratio(scale["status_ms"], scale["direct_ms"]),
            )
        )
    startup = results.get("startup")
    if startup:
        rows.append(
            (
                "`meshbot run help` wall time (CPU time)",
                f"{startup['meshbot_ms']:.0f} ms ({startup.get('meshbot_cpu_ms', math.nan):.0f} ms)",
                f"`{startup['reference']}` {startup['reference_ms']:.0f} ms "
                f"({startup.get('reference_cpu_ms', math.nan):.0f} ms)",
                ratio(startup["meshbot_ms"], startup["reference_ms"]),
            )
        )
    expiry = results.get("expiry")
    if expiry:
        rows.append(
            (
                f"expiry lateness, {expiry['experiments']} active",
                f"p50 {expiry['p50_ms']:.0f} ms, p99 {expiry['p99_ms']:.0f} ms",
                "goal p99 < 2,000 ms",
                ratio(expiry["p99_ms"], 2000) + " of goal",
            )
        )
    for kind, audit in (results.get("audit") or {}).items():
        for label, q in audit["queries"].items():
            rows.append(
                (
                    f"audit {label}, {audit['rows']:,} rows ({kind})",
                    f"p50 {q['p50_ms']:.1f} ms, p95 {q['p95_ms']:.1f} ms",
                    "—",
                    "—",
                )
            )
    header = ("measure", "meshbot", "reference (same run)", "ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(header, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines.extend(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    return lines


def main(argv: list[str]) -> int:
    names = available()
    if not argv or argv == ["--quick"]:
        quick = ["--quick"] if argv else []
        results: dict[str, Any] = {
            "quick": bool(quick),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
        }
        for name in sorted(names, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER)):
            results[name] = importlib.import_module(f"bench.{name}").main(quick)
        print()
        print("\n".join(table(results)))
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
        print(f"\nwritten to {RESULTS}")
        return 0
    name, args = argv[0], argv[1:]
    if name not in names:
        print(f"unknown benchmark {name!r}; available: {', '.join(names)}", file=sys.stderr)
        return 2
    result = importlib.import_module(f"bench.{name}").main(args)
    # One benchmark's rows too (RSS, command to effect...), which its own progress lines leave out.
    print()
    print("\n".join(table({name: result})))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
