"""The report's forgetting summary: what fine-tuning gained and what it cost, per run and condition.

For every run with an epoch-00 point (before training: not a checkpoint evaluated on its own,
whose metrics file names it, `ckpt_path`) and a later one (the reported point: the latest, or
`--epoch`), per condition (prompt layout, text control, probes: whatever the files
hold) and task of the registry:

- gain = the yes/no task's F1 at the reported point − its F1 at epoch 00 (percentage points);
- retention = the label task's (identity's) accuracy at the reported point / at epoch 00 (a
  percentage; undefined when epoch 00's accuracy is 0).

Each comes with a paired 95 % bootstrap interval from the two points' saved answers
(`predictions/epoch=NN.jsonl`): every resample draws one set of words, then clips
(`interleave.tools.bootstrap.resampling`), and both epochs are scored on that same set
(`bootstrap.paired`); the interval is the 2.5th and 97.5th percentiles of the resampled gains or
ratios (resamples where the ratio is undefined are left out). A run without saved answers at both
points gets its figures from the metrics files, without intervals. A study condition's figures
(`interleave report --study`) are the means over its seeds, with the seed level drawn first
(`bootstrap.seed_means`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from interleave.errors import InterleaveError
from interleave.eval.predictions import CKPT_PATH, Prediction
from interleave.eval.tasks import LABEL, ROOT, TASKS, VERDICT, parse_tag
from interleave.tools.report.runs import epoch_points, point_metrics, read_metrics, select_point
from interleave.tools.report.table import write_csv
from interleave.tools.saved_answers import answer_rows, answers_path

Key = tuple[str, str]  # (condition, task)
FILE = "forgetting.csv"
FIRST = 0  # the point before training


@dataclass
class Points:
    """One run's two points: epoch 00 and the reported one, their metrics and, where saved, answers."""

    label: str
    last: int
    metrics: tuple[dict[str, Any], dict[str, Any]]
    answers: tuple[dict[str, list[Prediction]], dict[str, list[Prediction]]] | None
    note: str | None = None


@dataclass
class Forgetting:
    """The summary of one run or study condition: (condition, task) -> gain or retention, its
    95 % interval where there is one, and its value in every resample (for the seed level)."""

    run: str
    last: int
    values: dict[Key, float]
    bounds: dict[Key, tuple[float, float]] = field(default_factory=dict)
    resampled: dict[Key, np.ndarray] = field(default_factory=dict)
    seeds: int = 0  # a study condition's seeds; 0 for a run


def load_points(run: Path, label: str, epoch: int | None, parser: str | None) -> Points | str:
    """The run's epoch-00 and reported points, or the reason it has no forgetting figures."""
    points = epoch_points(run)
    last, file = select_point(run, epoch)
    if FIRST not in points:
        return f"{label}: no epoch {FIRST:02d} point (before training)"
    checkpoint = read_metrics(points[FIRST]).get(CKPT_PATH)
    if checkpoint is not None:  # `validate --ckpt_path` of a checkpoint that does not say its epochs
        return (
            f"{label}: epoch {FIRST:02d} is the checkpoint {checkpoint} evaluated on its own "
            "(train.py validate --ckpt_path), not the model before training"
        )
    if last == FIRST:
        return (
            f"{label}: only epoch {FIRST:02d} is evaluated"
            if epoch is None
            else f"{label}: the reported point is epoch {FIRST:02d}"
        )
    files = (points[FIRST], file)
    metrics = (point_metrics(files[0], parser), point_metrics(files[1], parser))
    missing = [answers_path(f) for f in files if not answers_path(f).is_file()]
    if missing:
        return Points(label, last, metrics, None, f"{label}: no paired intervals, no saved answers ({missing[0]})")
    try:
        answers = (answer_rows(answers_path(files[0]), parser), answer_rows(answers_path(files[1]), parser))
    except InterleaveError as err:  # the table names it too; the figures come from the metrics files
        return Points(label, last, metrics, None, f"{label}: no paired intervals: {err}")
    return Points(label, last, metrics, answers)


def _keyed(values: Mapping[str, Any], primary: str | None) -> dict[tuple[str, str, str], Any]:
    """Tag -> value as (condition, task, metric) -> value; the main layout's tags under `primary`."""
    out = {}
    for tag, value in values.items():
        parsed = parse_tag(tag)
        if parsed is None or value is None or isinstance(value, (bool, str)):
            continue
        out[(parsed.condition or primary or "primary", parsed.task, parsed.metric)] = value
    return out


def _ratio(before: Any, after: Any) -> Any:
    before, after = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    return np.where(before > 0, after / np.where(before > 0, before, 1.0), np.nan)


def statistics(first: Mapping[tuple[str, str, str], Any], last: Mapping[tuple[str, str, str], Any]) -> dict[Key, Any]:
    """(condition, task) -> gain (a yes/no task's F1, last − first) or retention (a label task's
    accuracy, last / first, NaN where first is 0), from two (condition, task, metric) -> value (or
    -> [resamples]) maps (`_keyed`)."""
    out: dict[Key, Any] = {}
    for (condition, task, metric), before in first.items():
        entry, after = TASKS.get(task), last.get((condition, task, metric))
        if entry is None or after is None:
            continue
        if entry.scoring == VERDICT and metric == "f1":
            out[(condition, task)] = np.asarray(after, dtype=float) - np.asarray(before, dtype=float)
        elif entry.scoring == LABEL and metric == "accuracy":
            out[(condition, task)] = _ratio(before, after)
    return out


def _points(values: Mapping[Key, Any]) -> dict[Key, float]:
    return {key: float(value) for key, value in values.items()}


def forgetting(points: Points, drawn: Any | None) -> Forgetting:
    """One run's summary: from the saved answers with paired resamples (`drawn`:
    `bootstrap.resampling` of rows holding both points' queries), or from the metrics files."""
    from interleave.tools.bootstrap import paired, percentiles

    if points.answers is None:
        first, last = (_keyed(m, m.get("layout")) for m in points.metrics)
        return Forgetting(points.label, points.last, _points(statistics(first, last)))
    a, b = points.answers
    prefixes = {c: f"{ROOT}/{c}" for c in {**a, **b}}  # every condition by name: parse_tag gives it back
    found = paired(a, b, prefixes, drawn)
    resampled = statistics(_keyed(found.in_a, None), _keyed(found.in_b, None))
    bounds = {key: bounds for key, values in resampled.items() if (bounds := percentiles(values)) is not None}
    values = statistics(_keyed(found.point_a, None), _keyed(found.point_b, None))
    return Forgetting(points.label, points.last, _points(values), bounds, resampled)


def _rows_of(points: Sequence[Points]) -> list[Prediction]:
    return [r for p in points if p.answers for side in p.answers for rows in side.values() for r in rows]


def run_summary(points: Points, resamples: int, seed: int) -> Forgetting:
    """One run's summary, its resamples drawn from its own two points' queries."""
    from interleave.tools.bootstrap import resampling

    return forgetting(points, resampling(_rows_of([points]), resamples, seed) if points.answers else None)


def seed_summary(name: str, seeds: Sequence[Points], resamples: int, seed: int) -> Forgetting:
    """A study condition's summary: each figure's mean over its seeds; with every seed's saved
    answers, the interval of that mean (seeds drawn with replacement, then one draw of words and
    clips shared by the seeds and both epochs, `bootstrap.seed_means`)."""
    from interleave.tools.bootstrap import percentiles, resampling, seed_counts, seed_means

    answered = all(p.answers for p in seeds)
    drawn = resampling(_rows_of(seeds), resamples, seed) if answered else None
    each = [forgetting(p, drawn) for p in seeds]
    keys = [k for k in each[0].values if all(k in f.values for f in each)]
    values = {k: float(np.mean([f.values[k] for f in each])) for k in keys}
    if drawn is None:
        return Forgetting(name, seeds[0].last, values, seeds=len(seeds))
    counts = seed_counts(len(each), resamples, seed)
    means = seed_means([{k: f.resampled[k] for k in keys} for f in each], counts)
    bounds = {k: b for k in keys if (b := percentiles(means[k])) is not None}
    return Forgetting(name, seeds[0].last, values, bounds, means, seeds=len(seeds))


def summaries(
    runs: Sequence[tuple[Path, str]], epoch: int | None, parser: str | None, resamples: int, seed: int
) -> tuple[list[Forgetting], list[str]]:
    """The summary of every run that has two points, and a line for each run that has none or no intervals."""
    found, notes = [], []
    for run, label in runs:
        points = load_points(run, label, epoch, parser)
        if isinstance(points, str):
            notes.append(points)
            continue
        if points.note:
            notes.append(points.note)
        try:
            found.append(run_summary(points, resamples, seed))
        except InterleaveError as err:  # e.g. the two points were asked different queries
            notes.append(f"{label}: no forgetting figures: {err}")
    return found, notes


# ---- rendering ------------------------------------------------------------------------------


def _column(task: str) -> str:
    entry = TASKS[task]
    return f"{entry.chart or entry.name} gain" if entry.scoring == VERDICT else f"{entry.name} retention"


def table_columns(found: Sequence[Forgetting]) -> list[tuple[str, str]]:
    """(column, task) of every task with a figure: the gains, then the retentions, in registry order."""
    tasks = {task for f in found for _, task in f.values}
    ordered = sorted((t for t in TASKS if t in tasks), key=lambda t: TASKS[t].scoring != VERDICT)
    return [(_column(t), t) for t in ordered]


def _cell(task: str, value: float | None, bounds: tuple[float, float] | None) -> str:
    if value is None or np.isnan(value):
        return "–"
    if TASKS[task].scoring == VERDICT:
        text = f"{100 * value:+.1f}"
        return text + (f" [{100 * bounds[0]:+.1f}, {100 * bounds[1]:+.1f}]" if bounds else "")
    return f"{100 * value:.1f}" + (f" [{100 * bounds[0]:.1f}, {100 * bounds[1]:.1f}]" if bounds else "")


def conditions_of(f: Forgetting) -> list[str]:
    return list(dict.fromkeys(condition for condition, _ in f.values))


def to_markdown(
    found: Sequence[Forgetting], notes: Sequence[str], resamples: int, seed: int, label: str = "Run"
) -> str:
    """The forgetting section: a legend, one row per run (or study condition) and condition, notes."""
    if not found:
        return ""
    shown = table_columns(found)
    interval = (
        f"[lo, hi] = paired 95 % bootstrap interval: {resamples} resamples of the words, then of the clips "
        f"within each word, each scored at both epochs (--bootstrap {resamples} --seed {seed})"
        if any(f.bounds for f in found)
        else "no intervals"
    )
    lines = [
        f"Forgetting (the reported epoch against epoch {FIRST:02d}, before training): gain = F1 there − F1 at "
        f"epoch {FIRST:02d}, in percentage points; retention = accuracy there / at epoch {FIRST:02d}, in %; "
        f"{interval}.",
        "",
        "| " + " | ".join([label, "Condition", "Epochs", *(c for c, _ in shown)]) + " |",
        "| --- | --- | --- |" + " ---: |" * len(shown),
    ]
    for f in found:
        for condition in conditions_of(f):
            cells = [_cell(task, f.values.get((condition, task)), f.bounds.get((condition, task))) for _, task in shown]
            lines.append(f"| {f.run} | {condition} | {FIRST:02d} → {f.last:02d} | " + " | ".join(cells) + " |")
    return "\n".join(lines + [""] + list(notes)) + "\n"


def csv_rows(found: Sequence[Forgetting], label: str = "Run") -> tuple[list[str], list[dict[str, Any]]]:
    """The CSV's columns and rows: raw differences and ratios, `<column> lo` / `<column> hi`."""
    shown = table_columns(found)
    fields = [label, "Condition", "First", "Last"] + [f"{c}{end}" for c, _ in shown for end in ("", " lo", " hi")]
    out = []
    for f in found:
        for condition in conditions_of(f):
            row: dict[str, Any] = {label: f.run, "Condition": condition, "First": FIRST, "Last": f.last}
            for column, task in shown:
                value = f.values.get((condition, task))
                row[column] = None if value is None or np.isnan(value) else value
                row[f"{column} lo"], row[f"{column} hi"] = f.bounds.get((condition, task), (None, None))
            out.append(row)
    return fields, out


def write(found: Sequence[Forgetting], path: Path, label: str = "Run") -> Path:
    """`forgetting.csv`: one row per run (or study condition) and condition."""
    fields, table = csv_rows(found, label)
    if not table:
        raise InterleaveError(f"{path}: no forgetting figures to write")
    write_csv(path, fields, table)
    return path
