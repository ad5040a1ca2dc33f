"""How telemetry reads in a reply: the window a command names, aligned tables, and `data` shapes.

Shared by summary, graph and status, so a number looks the same wherever it is shown.
"""

from __future__ import annotations

import re
from typing import Any

from handlers import parse
from mesh.prometheus import Edge, Latency, ServiceSignals, Signals

_WINDOW = re.compile(r"([1-9][0-9]{0,3})([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# rate() needs at least two samples; Prometheus keeps 15 days by default.
MIN_WINDOW_SECONDS, MAX_WINDOW_SECONDS = 60, 7 * 86400


def window(text: str) -> str:
    match = _WINDOW.fullmatch(text)
    if not match or not MIN_WINDOW_SECONDS <= int(match[1]) * _SECONDS[match[2]] <= MAX_WINDOW_SECONDS:
        raise parse.ParseError(f"window {text!r} must be a duration from 1m to 7d, like 15m or 1h")
    return text


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def latency(value: Latency | None) -> str:
    return "n/a" if value is None else value.text()


def errors_text(signals: Signals) -> str:
    return ", ".join(f"{e.code} {e.flags} {e.share:.0%}" for e in signals.top_errors()) or "-"


def signals_row(name: str, signals: Signals) -> list[str]:
    return [
        name,
        f"{signals.requests_per_second:.1f}",
        percent(signals.success_rate),
        *(latency(signals.latency(q)) for q in (0.5, 0.9, 0.99)),
        percent(signals.fault_share),
        errors_text(signals),
    ]


def table(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded to one width, numbers right-aligned, for a monospace block."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = [
            c.ljust(w) if i in (0, len(row) - 1) else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return "\n".join(line(r) for r in [header, *rows])


def _latency_data(signals: Signals) -> dict[str, float | None]:
    found = {f"p{round(q * 100)}": signals.latency(q) for q in (0.5, 0.9, 0.99)}
    return {k: (round(v.ms, 3) if v else None) for k, v in found.items()}


def signals_data(signals: Signals) -> dict[str, Any]:
    top_bucket = [f"p{round(q * 100)}" for q in (0.5, 0.9, 0.99) if (v := signals.latency(q)) and v.at_least]
    return {
        "requests_per_second": round(signals.requests_per_second, 6),
        "success_rate": None if signals.success_rate is None else round(signals.success_rate, 6),
        "latency_ms": _latency_data(signals),
        # Quantiles that fell in the top bucket: their value is a lower bound.
        "latency_at_least": top_bucket,
        "fault_share": None if signals.fault_share is None else round(signals.fault_share, 6),
        "top_errors": [
            {"code": e.code, "flags": e.flags, "share": round(e.share, 6)} for e in signals.top_errors()
        ],
    }


def service_data(entry: ServiceSignals) -> dict[str, Any]:
    return {
        "service": entry.service,
        "namespace": entry.namespace,
        **signals_data(entry.signals),
        "callers": [
            {
                "workload": c.workload,
                "namespace": c.namespace,
                "reporter": c.reporter,
                **signals_data(c.signals),
            }
            for c in entry.callers
        ],
    }


def edge_data(edge: Edge) -> dict[str, Any]:
    return {
        "source": edge.source,
        "source_namespace": edge.source_namespace,
        "destination": edge.destination,
        "service": edge.service,
        "protocol": edge.protocol,
        "requests_per_second": round(edge.requests_per_second, 6),
        "error_rate": round(edge.error_rate, 6),
        "fault_share": round(edge.fault_share, 6),
    }
