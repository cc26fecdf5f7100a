"""The report's benchmark table (issue 37): each benchmark's accuracy with the clip, under each
control, and the share of items whose answer changes when the clip does.

Read from a point's metrics file (`benchmarks`: each benchmark's file hash and subset) and its rows
(`predictions/epoch=NN.bench.jsonl`, `callbacks.benchmarks`). For every run, benchmark and scoring:
one line per condition (`clip`, then the controls the run asked) with its accuracy and, for a
control, its agreement with the clip's choice and 1 − agreement (the answers that change), each with
a 95 % bootstrap interval over items (the items resampled with replacement, the same draws for
every condition of a benchmark, so the figures are paired). Runs evaluated on different files or
subsets of one benchmark are refused, as runs on different SHARD files are.

The forgetting summary's part (`forgetting_section`, `forgetting_benchmarks.csv`): each figure's
change since epoch 00 on the items both points asked, with a paired interval over items (the same
items drawn for both points). A study (`study_lines`): per study condition the mean over its seeds
of each accuracy and of its change since epoch 00, each with a hierarchical interval (the seeds
drawn first, then the items: `interleave.tools.bootstrap.seed_item_interval`).
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from interleave.errors import InterleaveError
from interleave.eval.predictions import CKPT_PATH
from interleave.tools.bootstrap import item_draws, item_interval, seed_item_interval
from interleave.tools.report.runs import epoch_points
from interleave.tools.report.table import write_csv
from interleave.tools.saved_answers import bench_rows as read_rows

HEADER = ("Run", "Epoch", "Benchmark", "Scoring", "Condition", "Items", "Accuracy", "Agreement", "Changed")
GAIN_HEADER = ("Run", "Since", "Epoch", "Benchmark", "Scoring", "Condition", "Items", "Accuracy change")
STUDY_HEADER = (
    "Study condition",
    "Seeds",
    "Epoch",
    "Benchmark",
    "Scoring",
    "Condition",
    "Items",
    "Accuracy",
    "Change since 00",
)
FORGETTING_FILE = "forgetting_benchmarks.csv"
STUDY_FILE = "benchmarks.csv"  # a study's benchmark table (`study_lines`)
CLIP = "clip"


def check_same_benchmarks(points: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Refuse runs whose metrics record one benchmark name with another file hash or subset."""
    seen: dict[str, tuple[str, Any, Any]] = {}
    for label, metrics in points:
        for name, entry in (metrics.get("benchmarks") or {}).items():
            key = (entry.get("sha256"), entry.get("subset"))
            if name in seen and seen[name][1:] != key:
                raise InterleaveError(
                    f"runs {seen[name][0]} and {label} were evaluated on different files or subsets of benchmark "
                    f"{name!r} (sha256 {seen[name][1]} vs {key[0]}; subset {seen[name][2]} vs {key[1]}); their "
                    "figures cannot be put side by side"
                )
            seen.setdefault(name, (label, *key))


def _cell(value: float, bounds: tuple[float, float] | None) -> str:
    return f"{value:.3f}" + (f" [{bounds[0]:.3f}, {bounds[1]:.3f}]" if bounds else "")


def benchmark_rows(
    label: str, epoch: int, rows: Sequence[dict[str, Any]], resamples: int, seed: int
) -> list[dict[str, str]]:
    """One run point's lines: per benchmark, scoring and condition, accuracy, agreement and changed."""
    out = []
    groups: dict[tuple[str, str], dict[str, dict[str, dict[str, Any]]]] = {}
    for row in rows:
        groups.setdefault((row["benchmark"], row["scoring"]), {}).setdefault(row["condition"], {})[row["id"]] = row
    rng = np.random.default_rng(seed)
    for (name, scoring), conditions in groups.items():
        ids = list(conditions.get(CLIP, {}) or next(iter(conditions.values())))
        draws = item_draws(len(ids), resamples, rng)
        real = conditions.get(CLIP, {})
        for condition, by_id in conditions.items():
            correct = np.array([float(by_id[i]["correct"]) if i in by_id else np.nan for i in ids])
            asked = int(np.sum(~np.isnan(correct)))
            line = {
                "Run": label,
                "Epoch": f"{epoch:02d}",
                "Benchmark": name,
                "Scoring": scoring,
                "Condition": condition,
                "Items": str(asked),
                "Agreement": "",
                "Changed": "",
            }
            line["Accuracy"] = _cell(float(np.nanmean(correct)), item_interval(correct, draws))
            if condition != CLIP and real:
                same = np.array(
                    [
                        float(by_id[i].get("chosen") == real[i].get("chosen")) if i in by_id and i in real else np.nan
                        for i in ids
                    ]
                )
                line["Agreement"] = _cell(float(np.nanmean(same)), item_interval(same, draws))
                line["Changed"] = _cell(1 - float(np.nanmean(same)), item_interval(1 - same, draws))
            out.append(line)
    return out


def _signed(value: float, bounds: tuple[float, float] | None) -> str:
    return f"{value:+.3f}" + (f" [{bounds[0]:+.3f}, {bounds[1]:+.3f}]" if bounds else "")


def gain_rows(
    label: str, epoch: int, rows: Sequence[dict[str, Any]], before: Sequence[dict[str, Any]], resamples: int, seed: int
) -> list[dict[str, str]]:
    """The accuracy change since epoch 00 per benchmark, scoring and condition, on the items both
    points asked, with a paired bootstrap interval over those items (the same draws for both points)."""
    then = {(r["benchmark"], r["scoring"], r["condition"], r["id"]): float(r["correct"]) for r in before}
    groups: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for r in rows:
        key = (r["benchmark"], r["scoring"], r["condition"])
        if (*key, r["id"]) in then:
            groups.setdefault(key, []).append((float(r["correct"]), then[(*key, r["id"])]))
    rng = np.random.default_rng(seed)
    out = []
    for (name, scoring, condition), pairs in groups.items():
        diff = np.array([now - past for now, past in pairs])
        draws = item_draws(len(diff), resamples, rng)
        out.append(
            {
                "Run": label,
                "Since": "00",
                "Epoch": f"{epoch:02d}",
                "Benchmark": name,
                "Scoring": scoring,
                "Condition": condition,
                "Items": str(len(diff)),
                "Accuracy change": _signed(float(diff.mean()), item_interval(diff, draws)),
            }
        )
    return out


def to_markdown(lines: Sequence[dict[str, str]], resamples: int) -> str:
    """The table, with the line that says what it holds; "" without a benchmark."""
    if not lines:
        return ""
    head = [
        "Multiple-choice benchmarks (docs/benchmarks.md): accuracy with the clip and under each control; Agreement: "
        "the share of items whose choice is the clip's; Changed: 1 − agreement, the answers that change when the clip "
        "does" + (f"; 95 % intervals over items, {resamples} resamples." if resamples else "."),
        "",
        "| " + " | ".join(HEADER) + " |",
        "| " + " | ".join("---" for _ in HEADER) + " |",
    ]
    return "\n".join(head + ["| " + " | ".join(line[h] for h in HEADER) + " |" for line in lines]) + "\n"


def _table(header: Sequence[str], lines: Sequence[dict[str, str]]) -> str:
    return (
        "| "
        + " | ".join(header)
        + " |\n| "
        + " | ".join("---" for _ in header)
        + " |\n"
        + "".join("| " + " | ".join(line[h] for h in header) + " |\n" for line in lines)
    )


def _points(
    runs: Sequence[tuple[Path, str]], select: Callable[[Path, int | None], tuple[int, Path]], epoch: int | None
) -> list[tuple[Path, str, int, Path]]:
    """Each run's reported point (run, label, epoch, metrics file); runs on other benchmark files refused."""
    points = []
    for run, label in runs:
        found, file = select(run, epoch)
        points.append((run, label, found, file, json.loads(file.read_text(encoding="utf-8"))))
    check_same_benchmarks([(label, metrics) for _, label, _, _, metrics in points])
    return [(run, label, found, file) for run, label, found, file, _ in points]


def benchmark_section(
    runs: Sequence[tuple[Path, str]], select: Callable[[Path, int | None], tuple[int, Path]], args: argparse.Namespace
) -> str:
    """What `interleave report` appends to report.md: a blank line and the benchmark table, or ""."""
    lines = [
        line
        for _, label, epoch, file in _points(runs, select, args.epoch)
        for line in benchmark_rows(label, epoch, read_rows(file), args.bootstrap, args.seed)
    ]
    table = to_markdown(lines, args.bootstrap)
    return "\n" + table if table else ""


def forgetting_section(
    runs: Sequence[tuple[Path, str]], select: Callable[[Path, int | None], tuple[int, Path]], args: argparse.Namespace
) -> tuple[str, list[dict[str, str]]]:
    """The forgetting summary's benchmark part: per run with an epoch-00 point and a later reported
    one, each benchmark figure's change since epoch 00 (paired over items); its Markdown and rows."""
    gains = [
        line
        for run, label, epoch, file in _points(runs, select, args.epoch)
        if epoch != 0 and 0 in (found := epoch_points(run)) and before_training(found[0])
        for line in gain_rows(label, epoch, read_rows(file), read_rows(found[0]), args.bootstrap, args.seed)
    ]
    if not gains:
        return "", []
    return (
        "\nBenchmark accuracy since epoch 00 (the forgetting summary's multiple-choice part: the items both points "
        "asked"
        + ("; paired 95 % intervals over items" if args.bootstrap else "")
        + f"; also {FORGETTING_FILE}):\n\n"
        + _table(GAIN_HEADER, gains)
    ), gains


def before_training(metrics_file: Path) -> bool:
    """Whether an epoch-00 point is the model before training: not a checkpoint evaluated on its own
    (its metrics file names it, `ckpt_path`), as the forgetting summary reads it."""
    return CKPT_PATH not in json.loads(metrics_file.read_text(encoding="utf-8"))


def write_forgetting(gains: Sequence[dict[str, str]], path: Path) -> Path:
    """`forgetting_benchmarks.csv`: one row per run, benchmark, scoring and condition."""
    write_csv(path, GAIN_HEADER, gains)
    return path


def _by_item(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, float]]:
    """{(benchmark, scoring, condition): {item id: 1.0 right / 0.0 wrong}}, in the rows' order."""
    out: dict[tuple[str, str, str], dict[str, float]] = {}
    for r in rows:
        out.setdefault((r["benchmark"], r["scoring"], r["condition"]), {})[r["id"]] = float(r["correct"])
    return out


def _study_cell(values: Sequence[np.ndarray], resamples: int, seed: int, signed: bool) -> str:
    with warnings.catch_warnings():  # a seed that asked none of the items: NaN, left out
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = float(np.nanmean([np.nanmean(v) for v in values]))
    bounds = seed_item_interval(values, resamples, seed)
    return _signed(mean, bounds) if signed else _cell(mean, bounds)


def study_lines(
    name: str,
    epoch: int,
    seeds: Sequence[tuple[Sequence[dict[str, Any]], Sequence[dict[str, Any]] | None]],
    resamples: int,
    seed: int,
) -> list[dict[str, str]]:
    """One study condition's lines: per benchmark, scoring and condition, the mean over its seeds
    (each seed's (rows at `epoch`, rows at epoch 00 or None)) of the accuracy and, where every seed has
    an epoch-00 point, of the change since then, with hierarchical intervals (seeds, then items)."""
    now = [_by_item(rows) for rows, _ in seeds]
    then = [_by_item(rows) if rows is not None else None for _, rows in seeds]
    out = []
    for key in dict.fromkeys(k for found in now for k in found):
        if not all(key in found for found in now):
            continue  # a figure only some seeds hold is never a mean of some
        ids = list(dict.fromkeys(i for found in now for i in found[key]))
        accuracy = [np.array([found[key].get(i, np.nan) for i in ids]) for found in now]
        change = "–"
        if epoch != 0 and all(t is not None and key in t for t in then):
            before = [np.array([t[key].get(i, np.nan) for i in ids]) for t in then if t is not None]
            change = _study_cell([a - b for a, b in zip(accuracy, before)], resamples, seed, signed=True)
        out.append(
            {
                "Study condition": name,
                "Seeds": str(len(seeds)),
                "Epoch": f"{epoch:02d}",
                "Benchmark": key[0],
                "Scoring": key[1],
                "Condition": key[2],
                "Items": str(len(ids)),
                "Accuracy": _study_cell(accuracy, resamples, seed, signed=False),
                "Change since 00": change,
            }
        )
    return out


def study_markdown(lines: Sequence[dict[str, str]], resamples: int) -> str:
    """The study's benchmark table, with the line that says what it holds; "" without a benchmark."""
    if not lines:
        return ""
    return (
        "\nMultiple-choice benchmarks (docs/benchmarks.md), the mean over each condition's seeds: accuracy with the "
        "clip and under each control, and its change since epoch 00 on the items both points asked"
        + (
            f"; 95 % hierarchical intervals ({resamples} resamples: the seeds drawn with replacement, then the items)"
            if resamples
            else ""
        )
        + ".\n\n"
        + _table(STUDY_HEADER, lines)
    )
