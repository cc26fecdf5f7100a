"""`interleave report --plot`: several runs' curves in one figure.

Three panels (synonym F1, hypernym F1, identity accuracy) against epochs, one line per run and
condition, from every evaluated point of each run (`interleave.tools.report.cli.curve_series` reads
them). Written as `curves.png` beside `report.md`. A point that also holds `<column> min` and
`<column> max` (a study condition's seeds, `interleave.tools.report.study.study_series`) gets a
shaded band between them around its line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from interleave.eval.tasks import COLUMN_SUFFIX, TASKS
from interleave.files import atomic_path

FILE = "curves.png"


def panels() -> list[tuple[str, str]]:
    """(report column, panel title) of every Table 2 task's curve: "Syno F1" -> "synonym F1", ..."""
    tasks = sorted((t for t in TASKS.values() if t.column is not None), key=lambda t: t.headline != "f1")
    return [(f"{t.column} {COLUMN_SUFFIX[t.headline]}", t.chart) for t in tasks]


def curves_figure(series: Mapping[str, Sequence[dict[str, Any]]], band: str | None = None) -> Any:
    """A matplotlib Figure: one panel per `PANELS` entry, one line per series (name -> points,
    each `{"Epoch": N, column: fraction or None}`) in every panel where it has a value, and a
    band where the points hold `<column> min` / `<column> max` (`band` says what it spans, in
    the figure's title); one panel per Table 2 task of the registry (`panels`)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    shown = panels()
    figure = Figure(figsize=(4.5 * len(shown), 4.0), layout="constrained")
    axes = figure.subplots(1, len(shown), squeeze=False)[0]
    for ax, (column, name) in zip(axes, shown):
        for label, points in series.items():
            found = [
                (p["Epoch"], p[column]) for p in sorted(points, key=lambda p: p["Epoch"]) if p.get(column) is not None
            ]
            if found:
                (line,) = ax.plot(*zip(*found), marker="o", label=label)
                spread = [
                    (p["Epoch"], p[f"{column} min"], p[f"{column} max"])
                    for p in sorted(points, key=lambda p: p["Epoch"])
                    if p.get(f"{column} min") is not None and p.get(f"{column} max") is not None
                ]
                if spread:
                    ax.fill_between(*zip(*spread), color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set(title=name, xlabel="epochs trained", ylim=(0, 1))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(loc="best", fontsize="small")
    if band:
        figure.suptitle(band)
    return figure


def save_figure(figure: Any, path: str | Path) -> Path:
    """Write the figure as PNG through the atomic writer."""
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    return path
