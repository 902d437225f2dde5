"""The report's charts: matplotlib drawing SVG that goes inline into the HTML. Text stays text (svg.fonttype
`none`, a generic sans-serif the viewer has), so the charts need no font, no script and no network, print as vectors,
and a reader can select their labels. Each chart's ids are prefixed with its name so that many charts share a page."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import date

from loader.errors import LoaderError

HELD, ACTIVE, GPU, CPU, IDLE = "#3b6ea5", "#e08a2c", "#7b4fa0", "#5a9e6f", "#c44e52"
INSTALL_HINT = "`report` draws its charts with matplotlib: pip install 'jupyterhub-metrics[report]'"


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise LoaderError(INSTALL_HINT) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    pyplot.rcParams.update(
        {
            "svg.fonttype": "none",
            "font.family": "sans-serif",
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.color": "#dddddd",
            "grid.linewidth": 0.6,
        }
    )
    return pyplot


def _svg(figure, name: str) -> str:
    """The figure as an <svg> element (no XML prolog), its ids prefixed with `name`, the same bytes every time."""
    pyplot = _pyplot()
    pyplot.rcParams["svg.hashsalt"] = name
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    pyplot.close(figure)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    prefix = re.sub(r"[^A-Za-z0-9_-]", "-", name)
    text = re.sub(r'id="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m.group(1)})", text)
    text = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}-{m.group(1)}"', text)
    return text.replace("<svg ", f'<svg role="img" aria-label="{name}" class="chart" ', 1)


def daily_hours(name: str, days: Sequence[date], held: Sequence[float], active: Sequence[float | None]) -> str:
    """Hours held per day as bars, the hours the hub saw activity in over them (where it was read)."""
    pyplot = _pyplot()
    figure, axes = pyplot.subplots(figsize=(7.5, 2.4))
    axes.bar(days, held, color=HELD, width=0.8, label="held")
    if any(value is not None for value in active):
        axes.bar(days, [value or 0 for value in active], color=ACTIVE, width=0.45, label="active")
    axes.set_ylabel("hours")
    axes.legend(loc="upper left", frameon=False, ncols=2)
    figure.autofmt_xdate()
    return _svg(figure, name)


def hours_by_label(name: str, labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[float]]]) -> str:
    """Horizontal stacked bars: one per label, a segment per (legend, colour, values) series."""
    pyplot = _pyplot()
    height = max(1.4, 0.32 * len(labels) + 0.8)
    figure, axes = pyplot.subplots(figsize=(7.5, height))
    positions = list(range(len(labels)))[::-1]
    left = [0.0] * len(labels)
    for legend, colour, values in series:
        axes.barh(positions, values, left=left, color=colour, label=legend, height=0.65)
        left = [start + value for start, value in zip(left, values, strict=True)]
    axes.set_yticks(positions, labels=list(labels))
    axes.set_xlabel("hours")
    axes.grid(axis="y", visible=False)
    axes.legend(loc="lower right", frameon=False)
    return _svg(figure, name)
