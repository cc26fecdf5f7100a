"""The frontier's figures (`interleave frontier`): per α, condition and task, the headline metric
(F1 of a yes/no task, accuracy of identity), its change from α = 0 (the reasoning gain) and its
ratio to α = 0 (the labelling retention), each with a 95 % bootstrap interval; written as
`frontier.csv`, `frontier.md` and `frontier.png`.

The intervals resample as `interleave report` does (`interleave.tools.bootstrap`: the words, then
each drawn word's clips), with the same draws at every α: the α's differ only in their weights, so
a change or a ratio is computed resample by resample on the same words and clips (paired).

More figures join them as a `Section` (the multiple-choice benchmarks': `interleave.tools.frontier.benchmarks`):
its rows go to `frontier.csv` with the others, its lines to `frontier.md` after the tables, its panels
to `frontier.png` after the SHARD's.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from interleave.eval.evaluate import condition_metrics
from interleave.eval.predictions import Prediction
from interleave.eval.tasks import CONDITIONS, LABEL, TASKS, metric_tag
from interleave.files import atomic_path, write_text_atomic
from interleave.tools.bootstrap import percentiles, resampled_metrics, resampling

Interval = tuple[float, float] | None


@dataclass(frozen=True)
class AlphaRows:
    """One α's saved answers, by condition."""

    alpha: float
    rows: Mapping[str, Sequence[Prediction]]


@dataclass(frozen=True)
class FrontierRow:
    """One α, condition and task: its headline metric, change and ratio from α = 0, with intervals."""

    alpha: float
    condition: str
    task: str
    metric: str
    value: float
    interval: Interval
    change: float
    change_interval: Interval
    ratio: float  # NaN where α = 0's value is 0
    ratio_interval: Interval

    def as_csv(self) -> dict[str, Any]:
        def bounds(name: str, found: Interval) -> dict[str, Any]:
            return {f"{name}_lo": "" if found is None else found[0], f"{name}_hi": "" if found is None else found[1]}

        return {
            "alpha": self.alpha,
            "condition": self.condition,
            "task": self.task,
            "metric": self.metric,
            "value": self.value,
            **bounds("value", self.interval),
            "change": self.change,
            **bounds("change", self.change_interval),
            "ratio": "" if math.isnan(self.ratio) else self.ratio,
            **bounds("ratio", self.ratio_interval),
        }


@dataclass(frozen=True)
class Section:
    """More of the frontier beside the SHARD's figures: rows for `frontier.csv`, lines for
    `frontier.md`, and panels for `frontier.png` (each draws on the matplotlib axes it is given)."""

    rows: Sequence[FrontierRow] = ()
    markdown: Sequence[str] = ()
    panels: Sequence[Callable[[Any], None]] = ()


def _ratio(a: np.ndarray | float, b: np.ndarray | float) -> Any:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.asarray(b) > 0, np.asarray(a) / np.where(np.asarray(b) > 0, b, 1.0), np.nan)


def frontier_rows(
    points: Sequence[AlphaRows], prefixes: Mapping[str, str], resamples: int = 1000, seed: int = 0
) -> list[FrontierRow]:
    """Every α's (in the order given) headline metrics against α = 0's (which `points` must hold)."""
    reference = next((p for p in points if p.alpha == 0.0), None)
    if reference is None:
        raise ValueError("the frontier is measured from alpha = 0, which the points lack")
    values = {
        p.alpha: {k: v for c, rows in p.rows.items() for k, v in condition_metrics(list(rows), prefixes[c]).items()}
        for p in points
    }
    resampled: dict[float, dict[str, np.ndarray]] = {}
    drawn = resampling([r for rows in reference.rows.values() for r in rows], resamples, seed)
    if drawn is not None:  # the same words and clips at every α
        resampled = {p.alpha: resampled_metrics(p.rows, prefixes, *drawn) for p in points}
    out = []
    for point in points:
        for condition in point.rows:
            for task in TASKS.values():
                tag = metric_tag(prefixes[condition], task.name, task.headline)
                if tag not in values[point.alpha] or tag not in values[0.0]:
                    continue
                value, base = values[point.alpha][tag], values[0.0][tag]
                mine, theirs = (resampled[point.alpha].get(tag), resampled[0.0].get(tag)) if resampled else (None, None)
                paired = mine is not None and theirs is not None
                out.append(
                    FrontierRow(
                        point.alpha,
                        condition,
                        task.name,
                        task.headline,
                        value,
                        percentiles(mine) if paired else None,
                        value - base,
                        percentiles(mine - theirs) if paired else None,
                        float(_ratio(value, base)),
                        percentiles(_ratio(mine, theirs)) if paired else None,
                    )
                )
    return out


def frontier_csv(rows: Sequence[FrontierRow]) -> str:
    text = io.StringIO()
    fields = list(FrontierRow(0.0, "", "", "", 0.0, None, 0.0, None, 0.0, None).as_csv())
    writer = csv.DictWriter(text, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(row.as_csv() for row in rows)
    return text.getvalue()


def _cell(value: float, found: Interval, form: str) -> str:
    if math.isnan(value):
        return "–"
    shown = form.format(value)
    return shown if found is None else f"{shown} [{form.format(found[0])}, {form.format(found[1])}]"


def frontier_markdown(rows: Sequence[FrontierRow], about: Mapping[str, str], resamples: int, seed: int) -> str:
    """The frontier's tables, one per condition: each task's headline metric (percent) with its change from
    α = 0 (points), and identity's ratio to α = 0 (its retention), with intervals."""
    alphas = list(dict.fromkeys(r.alpha for r in rows))
    lines = ["# Frontier", "", *(f"- {name}: {value}" for name, value in about.items()), ""]
    lines.append(
        "Each task's headline metric (percent: F1 of a yes/no task, identity's accuracy) at weights "
        "(1 − α)·start + α·end; *gain* is the change from α = 0 (points), *retention* identity's ratio "
        "to α = 0"
        + (
            f"; 95 % bootstrap intervals ({resamples} resamples of the words, then clips, the "
            f"same at every α; seed {seed})."
            if resamples > 0
            else "."
        )
    )
    lines.append("")
    for condition in dict.fromkeys(r.condition for r in rows):
        mine = [r for r in rows if r.condition == condition]
        tasks = list(dict.fromkeys(r.task for r in mine))
        head = ["α"]
        for task in tasks:
            head += [TASKS[task].chart, "retention" if TASKS[task].scoring == LABEL else "gain"]
        lines += [
            f"## {CONDITIONS[condition].title if condition in CONDITIONS else condition}",
            "",
            "| " + " | ".join(head) + " |",
            "| " + " | ".join(["---:"] * len(head)) + " |",
        ]
        for alpha in alphas:
            cells = [f"{alpha:g}" + ("" if 0.0 <= alpha <= 1.0 else " (extrapolated)")]
            for task in tasks:
                found = next((r for r in mine if r.alpha == alpha and r.task == task), None)
                if found is None:
                    cells += ["–", "–"]
                    continue
                cells.append(_cell(100 * found.value, _scaled(found.interval), "{:.1f}"))
                if TASKS[task].scoring == LABEL:
                    cells.append(_cell(found.ratio, found.ratio_interval, "{:.2f}"))
                else:
                    cells.append(_cell(100 * found.change, _scaled(found.change_interval), "{:+.1f}"))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _scaled(found: Interval) -> Interval:
    return None if found is None else (100 * found[0], 100 * found[1])


def frontier_figure(rows: Sequence[FrontierRow], more: Sequence[Callable[[Any], None]] = ()) -> Any:
    """Reasoning gain (each yes/no task's F1 change from α = 0) against labelling retention (identity
    accuracy over α = 0's), one panel per condition that asks identity, one labelled point per α,
    with the intervals as error bars. Where α = 0 named no label (retention undefined) the x axis is
    identity accuracy itself. `more`: further panels after those (a `Section`'s)."""
    from matplotlib.figure import Figure

    panels = [
        c
        for c in dict.fromkeys(r.condition for r in rows)
        if any(r.condition == c and TASKS[r.task].scoring == LABEL for r in rows)
    ]
    count = max(1, len(panels) + len(more))
    figure = Figure(figsize=(5 * count, 4), layout="constrained")
    axes = figure.subplots(1, count, squeeze=False)[0]
    for ax, draw in zip(axes[len(panels) :], more):
        draw(ax)
    for ax, condition in zip(axes, panels):
        identity = {r.alpha: r for r in rows if r.condition == condition and TASKS[r.task].scoring == LABEL}
        ratio = all(not math.isnan(r.ratio) for r in identity.values())
        for task in dict.fromkeys(r.task for r in rows if r.condition == condition and TASKS[r.task].scoring != LABEL):
            points = [
                (identity[r.alpha], r)
                for r in rows
                if r.condition == condition and r.task == task and r.alpha in identity
            ]
            xs = [i.ratio if ratio else i.value for i, _ in points]
            ys = [g.change for _, g in points]
            x_bounds = [(i.ratio_interval if ratio else i.interval) for i, _ in points]
            line = ax.errorbar(
                xs,
                ys,
                xerr=_errors(xs, x_bounds),
                yerr=_errors(ys, [g.change_interval for _, g in points]),
                marker="o",
                capsize=3,
                label=TASKS[task].chart,
            )
            for x, y, (_, g) in zip(xs, ys, points):
                ax.annotate(
                    f"α={g.alpha:g}",
                    (x, y),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize="small",
                    color=line[0].get_color(),
                )
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.margins(0.12)  # room for the labels of the outermost points
        ax.set(
            title=CONDITIONS[condition].title if condition in CONDITIONS else condition,
            xlabel="labelling retention (identity accuracy / at α=0)"
            if ratio
            else "identity accuracy (none at α=0: no retention ratio)",
            ylabel="reasoning gain (F1 − F1 at α=0)",
        )
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    if not panels and not more:
        axes[0].text(0.5, 0.5, "no condition asked identity", ha="center", va="center")
    return figure


def _errors(values: Sequence[float], bounds: Sequence[Interval]) -> Any:
    """Matplotlib's [2, N] error extents from intervals (none where an interval is missing)."""
    if all(b is None for b in bounds):
        return None
    return np.array(
        [
            [max(0.0, v - b[0]) if b else 0.0 for v, b in zip(values, bounds)],
            [max(0.0, b[1] - v) if b else 0.0 for v, b in zip(values, bounds)],
        ]
    )


def write_frontier(
    out: Path,
    rows: Sequence[FrontierRow],
    about: Mapping[str, str],
    resamples: int,
    seed: int,
    sections: Sequence[Section] = (),
) -> list[Path]:
    """`frontier.csv`, `frontier.md` and `frontier.png` in `out` (with the `sections`), each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "frontier.csv", frontier_csv([*rows, *(r for s in sections for r in s.rows)]))
    markdown = frontier_markdown(rows, about, resamples, seed)
    write_text_atomic(out / "frontier.md", "\n".join([markdown, *(line for s in sections for line in s.markdown)]))
    with atomic_path(out / "frontier.png") as tmp:
        frontier_figure(rows, [draw for s in sections for draw in s.panels]).savefig(tmp, format="png", dpi=100)
    return [out / "frontier.md", out / "frontier.csv", out / "frontier.png"]
