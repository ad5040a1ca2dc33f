"""The pictures replies carry: the service graph laid out by graphviz's `dot`, and a success chart
drawn by matplotlib. Both are PNG bytes; a missing `dot` is an error a person can act on.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import Refused
from mesh.prometheus import CallerSeries, Edge

# Colours the tests look for in the pixels: keep them distinct from graphviz's and matplotlib's defaults.
OK_COLOUR = "#2e7d32"
FAULT_COLOUR = "#c62828"
WARN_COLOUR = "#ef6c00"
DOT_TIMEOUT_SECONDS = 5.0
# The report card chart: the fault window's shade and the callers' lines, in this order. Opaque,
# so the pixels tests look for are exactly these; none is one of matplotlib's own colours.
WINDOW_COLOUR = "#fde2c4"
CALLER_COLOURS = ("#1f4e9c", "#8e24aa", "#00838f", "#6d4c41", "#558b2f", "#37474f")
# More lines than this is noise on a card: the rest are in its text.
MAX_CALLER_LINES = len(CALLER_COLOURS)
CARD_CHART_SIZE = (800, 720)  # pixels


@dataclass(frozen=True)
class Bar:
    label: str
    success: float  # 0..1


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def edge_label(edge: Edge) -> str:
    label = f"{edge.requests_per_second:.1f} rps, {edge.error_rate:.0%} err"
    return label + (f", {edge.fault_share:.0%} fault" if edge.fault_share > 0 else "")


def graph_dot(edges: Sequence[Edge], title: str) -> str:
    """DOT source: workloads as boxes, one edge per caller → workload, red when faulted, orange
    when failing without a fault."""
    lines = [
        "digraph mesh {",
        f"  graph [rankdir=LR, label={_quoted(title)}, labelloc=t, fontname=Helvetica, bgcolor=white];",
        "  node [shape=box, style=rounded, fontname=Helvetica];",
        "  edge [fontname=Helvetica, fontsize=10];",
    ]
    for node in sorted({e.source for e in edges} | {e.destination for e in edges}):
        lines.append(f"  {_quoted(node)};")
    for e in edges:
        colour = FAULT_COLOUR if e.fault_share > 0 else WARN_COLOUR if e.error_rate >= 0.05 else OK_COLOUR
        style = "bold" if e.fault_share > 0 else "solid"
        lines.append(
            f"  {_quoted(e.source)} -> {_quoted(e.destination)} [label={_quoted(edge_label(e))}, "
            f"color={_quoted(colour)}, fontcolor={_quoted(colour)}, style={style}, penwidth=2];"
        )
    lines.append("}")
    return "\n".join(lines)


def run_dot(source: str, fmt: str = "png") -> bytes:
    dot = shutil.which("dot")
    if dot is None:
        raise Refused("graphviz's `dot` is not installed: `apt-get install graphviz` (make debs does it)")
    try:
        result = subprocess.run(
            [dot, f"-T{fmt}"],
            input=source.encode(),
            capture_output=True,
            timeout=DOT_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise Refused(f"drawing the graph took more than {DOT_TIMEOUT_SECONDS:g}s") from None
    if result.returncode != 0:
        raise Refused(f"graphviz could not draw the graph: {result.stderr.decode(errors='replace')[:200]}")
    return result.stdout


def success_chart(bars: Sequence[Bar], title: str) -> bytes:
    """A horizontal bar per service or caller: the successful share green, the failed share red."""
    # Imported here: matplotlib takes ~0.3 s to import, which commands without a chart should not pay.
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 0.5 + 0.45 * max(len(bars), 1)), dpi=100)
    axes = figure.subplots()
    labels = [b.label for b in bars]
    success = [b.success * 100 for b in bars]
    failed = [100 - s for s in success]
    axes.barh(labels, success, color=OK_COLOUR)
    axes.barh(labels, failed, left=success, color=FAULT_COLOUR)
    axes.set_xlim(0, 100)
    axes.set_xlabel("% of requests (green: success, red: failed)")
    axes.set_title(title)
    axes.invert_yaxis()
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def card_chart(series: Sequence[CallerSeries], *, fault_start: float, fault_end: float, title: str) -> bytes:
    """Rate, success rate and p99 of each caller over time, one panel each, the fault's window
    shaded; times are Unix seconds, drawn as seconds relative to the fault's start."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    width, height = CARD_CHART_SIZE
    figure = Figure(figsize=(width / 100, height / 100), dpi=100)
    panels = figure.subplots(3, 1, sharex=True)
    shown = series[:MAX_CALLER_LINES]
    for panel, label in zip(panels, ("requests/s", "success %", "p99 ms"), strict=True):
        panel.axvspan(0, fault_end - fault_start, color=WINDOW_COLOUR, zorder=0)
        panel.set_ylabel(label)
    for caller, colour in zip(shown, CALLER_COLOURS, strict=False):
        for panel, points, scale in (
            (panels[0], caller.rate, 1.0),
            (panels[1], caller.success, 100.0),
            (panels[2], caller.p99_ms, 1.0),
        ):
            if points:
                xs = [t - fault_start for t, _ in points]
                panel.plot(
                    xs, [v * scale for _, v in points], color=colour, linewidth=2, label=caller.workload
                )
    panels[1].set_ylim(-2, 102)
    panels[2].set_xlabel("seconds from the fault's start (shaded: the fault ran)")
    panels[0].set_title(title)
    if shown:
        panels[0].legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
