"""The frontier's multiple-choice benchmarks (issue 37): at each α, every benchmark the config's
evaluation asks, under each scoring it asks and each condition (the clip, then its controls): the
accuracy, its change from α = 0 and its ratio to α = 0, with 95 % bootstrap intervals over items.

The items are resampled with replacement (`interleave.tools.bootstrap.item_draws`), one draw per
benchmark and scoring over the items α = 0 asked, used at every α and condition: an item's α and
α = 0 answers stay together, so a change is paired item by item. The figures become rows of the
frontier's own `FrontierRow` (task `bench/<name>/<scoring>`, condition the benchmark's, metric
`accuracy`), so `frontier.csv` holds them beside the SHARD's; `frontier.md` gets a table per
benchmark and scoring and `frontier.png` a panel each (accuracy against α, a line per condition).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from interleave.tools.bootstrap import item_draws, item_interval, percentiles
from interleave.tools.frontier.table import FrontierRow, Section, _cell, _errors, _ratio, _scaled

BENCH = "bench"  # the task's first segment: bench/<name>/<scoring>
CLIP = "clip"


@dataclass(frozen=True)
class AlphaBench:
    """One α's benchmark rows (its `epoch=00.bench.jsonl`, as `interleave.tools.saved_answers.bench_rows` reads them)."""

    alpha: float
    rows: Sequence[dict[str, Any]]


def bench_task(name: str, scoring: str) -> str:
    return f"{BENCH}/{name}/{scoring}"


def is_bench(row: FrontierRow) -> bool:
    return row.task.startswith(f"{BENCH}/")


def _by_item(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], dict[str, dict[str, float]]]:
    """{(benchmark, scoring): {condition: {item id: 1.0 right / 0.0 wrong}}}, in the rows' order."""
    out: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    for row in rows:
        key = (row["benchmark"], row["scoring"])
        out.setdefault(key, {}).setdefault(row["condition"], {})[row["id"]] = float(row["correct"])
    return out


def benchmark_frontier_rows(points: Sequence[AlphaBench], resamples: int = 1000, seed: int = 0) -> list[FrontierRow]:
    """Every α's (in the order given) benchmark accuracies against α = 0's (which `points` must hold)."""
    reference = next((p for p in points if p.alpha == 0.0), None)
    if reference is None:
        raise ValueError("the frontier is measured from alpha = 0, which the points lack")
    base = _by_item(reference.rows)
    answered = {p.alpha: _by_item(p.rows) for p in points}
    rng = np.random.default_rng(seed)
    out = []
    for (name, scoring), conditions in base.items():
        ids = list(conditions.get(CLIP) or next(iter(conditions.values())))
        draws = item_draws(len(ids), resamples, rng)
        for point in points:
            for condition, then in conditions.items():
                now = answered[point.alpha].get((name, scoring), {}).get(condition)
                if not now:
                    continue
                mine = np.array([now.get(i, np.nan) for i in ids])
                theirs = np.array([then.get(i, np.nan) for i in ids])
                value, reference_value = float(np.nanmean(mine)), float(np.nanmean(theirs))
                paired = ~np.isnan(mine) & ~np.isnan(theirs)
                change = np.where(paired, mine - theirs, np.nan)
                ratio_interval = None if draws is None else _percentiles_of_ratio(mine, theirs, draws)
                out.append(
                    FrontierRow(
                        point.alpha,
                        condition,
                        bench_task(name, scoring),
                        "accuracy",
                        value,
                        item_interval(mine, draws),
                        float(np.nanmean(change)) if paired.any() else float("nan"),
                        item_interval(change, draws),
                        float(_ratio(value, reference_value)),
                        ratio_interval,
                    )
                )
    return out


def _percentiles_of_ratio(mine: np.ndarray, theirs: np.ndarray, draws: np.ndarray) -> tuple[float, float] | None:
    with np.errstate(all="ignore"):
        a = np.nanmean(mine[draws], axis=1)
        b = np.nanmean(theirs[draws], axis=1)
    return percentiles(np.asarray(_ratio(a, b), dtype=float))


def benchmark_markdown(rows: Sequence[FrontierRow]) -> list[str]:
    """`frontier.md`'s benchmark tables: per benchmark and scoring, a line per α, and per condition
    its accuracy (percent) and change from α = 0 (points), with intervals; [] without benchmarks."""
    mine = [r for r in rows if is_bench(r)]
    if not mine:
        return []
    lines = [
        "## Multiple-choice benchmarks",
        "",
        "Accuracy (percent) with the clip and under each control the config asks (docs/benchmarks.md), "
        "and its change from α = 0 (points) on the items both asked; intervals resample the items, the "
        "same draws at every α.",
        "",
    ]
    for task in dict.fromkeys(r.task for r in mine):
        _, name, scoring = task.split("/", 2)
        conditions = list(dict.fromkeys(r.condition for r in mine if r.task == task))
        head = ["α"] + [f"{c} {part}" for c in conditions for part in ("accuracy", "change")]
        lines += [
            f"### {name}, {scoring}",
            "",
            "| " + " | ".join(head) + " |",
            "| " + " | ".join(["---:"] * len(head)) + " |",
        ]
        for alpha in dict.fromkeys(r.alpha for r in mine if r.task == task):
            cells = [f"{alpha:g}"]
            for condition in conditions:
                found = next(
                    (r for r in mine if r.task == task and r.alpha == alpha and r.condition == condition), None
                )
                if found is None:
                    cells += ["–", "–"]
                    continue
                cells.append(_cell(100 * found.value, _scaled(found.interval), "{:.1f}"))
                cells.append(_cell(100 * found.change, _scaled(found.change_interval), "{:+.1f}"))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def benchmark_panels(rows: Sequence[FrontierRow]) -> list[str]:
    """The figure's benchmark panels: one per benchmark and scoring (its task)."""
    return list(dict.fromkeys(r.task for r in rows if is_bench(r)))


def draw_benchmark_panel(ax: Any, rows: Sequence[FrontierRow], task: str) -> None:
    """Accuracy against α for one benchmark and scoring, a line per condition, intervals as error bars."""
    _, name, scoring = task.split("/", 2)
    mine = [r for r in rows if r.task == task]
    for condition in dict.fromkeys(r.condition for r in mine):
        line = sorted((r for r in mine if r.condition == condition), key=lambda r: r.alpha)
        xs, ys = [r.alpha for r in line], [r.value for r in line]
        ax.errorbar(xs, ys, yerr=_errors(ys, [r.interval for r in line]), marker="o", capsize=3, label=condition)
    ax.set(title=f"{name} ({scoring})", xlabel="α", ylabel="accuracy", ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")


def benchmark_section(points: Sequence[AlphaBench], resamples: int = 1000, seed: int = 0) -> Section:
    """The frontier's benchmark figures as a `Section` of its files (empty without benchmark rows)."""
    if not any(p.rows for p in points):
        return Section()
    rows = benchmark_frontier_rows(points, resamples, seed)
    return Section(
        rows,
        benchmark_markdown(rows),
        [lambda ax, task=task: draw_benchmark_panel(ax, rows, task) for task in benchmark_panels(rows)],
    )
