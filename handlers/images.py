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
from mesh.prometheus import Edge

# Colours the tests look for in the pixels: keep them distinct from graphviz's and matplotlib's defaults.
OK_COLOUR = "#2e7d32"
FAULT_COLOUR = "#c62828"
WARN_COLOUR = "#ef6c00"
DOT_TIMEOUT_SECONDS = 5.0


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
