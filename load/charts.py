"""The PNG line charts of the load reports, drawn by matplotlib (the `bench` extra:
`pip install -e '.[bench]'`, which `make bench` installs).

Only this module imports matplotlib, and only `load.report.charts` imports this module, so
the load generator runs without it (the report then says that it has no charts).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from matplotlib.figure import Figure  # a Figure of its own, not pyplot: no display, no global state
from matplotlib.ticker import EngFormatter, FuncFormatter, LogFormatter

DPI = 100
Series = tuple[str, Sequence[tuple[float, float]]]


def line_chart(series: Sequence[Series], width: int = 800, height: int = 450, *, title: str = "",
               xlabel: str = "", ylabel: str = "", log_y: bool = False,
               hline: float | None = None, hline_label: str = "") -> bytes:
    """A PNG of `width` x `height` pixels: one line with markers per series (label, [(x, y), ...]),
    its legend inside the plot; points that cannot be drawn (NaN, or y <= 0 on a log scale) are
    left out."""
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    for label, points in series:
        good = [(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y) and (y > 0 or not log_y)]
        if good:
            axes.plot([x for x, _ in good], [y for _, y in good], marker="o", markersize=4, label=label)
    if hline is not None and (hline > 0 or not log_y):
        axes.axhline(hline, color="tab:red", linestyle="--", linewidth=1, label=hline_label or None)
    if log_y:
        axes.set_yscale("log")
        # 1, 10, 100 rather than 10^0, 10^1, 10^2; 20, 50 labelled only over a short range
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axes.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False))
    axes.xaxis.set_major_formatter(EngFormatter(sep=""))
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, which="major", alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="best", fontsize="small", framealpha=0.9)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI)
    return out.getvalue()
