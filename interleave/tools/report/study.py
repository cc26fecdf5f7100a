"""`interleave report --study runs/<study>`: Table 2 over seeds, one row per study condition.

A study's folder (`interleave study`'s output) holds `<condition>/seed=<s>/`, each a run. Per
condition, the row is at the latest epoch every seed of it has evaluated (or `--epoch`); seeds
that reached different last epochs are named under the table, never mixed. Each figure is the
mean over the condition's seeds of the seed's figure (as logged, or re-scored with `--parser`),
for every tag the metrics files hold (`interleave.eval.tasks.parse_tag`: any task, any
condition, probes included), so the rows are those `run_rows` gives a run: the main layout, the
extra layouts, the text control.

The 95 % interval is a hierarchical bootstrap (`interleave.tools.bootstrap.seed_intervals`): in
each resample the condition's S seeds are drawn with replacement, then the words with
replacement and each drawn word's clips with replacement (one draw shared by the drawn seeds,
who answered the same queries), each drawn seed's metrics are computed on that draw, and their
mean (a seed drawn twice counts twice) is the resample's value; the interval is the 2.5th and
97.5th percentiles. A condition with one seed has the interval over queries only, and says so.
`--per-seed` adds every seed's own row; the forgetting summary (`forgetting`) is given per
condition (means over seeds, the same seed level first); the multiple-choice benchmarks
(`interleave.tools.report.benchmarks.study_lines`) per condition too: each accuracy and its change
since epoch 00, means over seeds with intervals drawing the seeds, then the items; `--plot` draws each condition's mean
curve with a band from the lowest to the highest seed at every epoch all its seeds reached.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interleave.errors import InterleaveError
from interleave.eval.predictions import Prediction
from interleave.eval.tasks import parse_tag
from interleave.tools.report import benchmarks, forgetting
from interleave.tools.report.runs import (
    condition_prefixes,
    epoch_points,
    format_points,
    natural_key,
    read_metrics,
    rescore_rows,
    rescoring_answers,
)
from interleave.tools.report.table import Row, add_intervals, provenance_notes, rows, run_rows, run_series
from interleave.tools.saved_answers import answer_rows, answers_path

SEED_FOLDER = re.compile(r"^seed=(\d+)$")
LABELS = ("Study condition", "Seeds", "Condition", "Epoch", "Parser")
SEED_LABELS = ("Run", "Condition", "Epoch", "Parser")
BAND = "shaded band: lowest to highest seed of the condition (min–max over seeds)"
ONE_SEED = "1 (interval over queries only)"


@dataclass
class StudyCondition:
    """One condition of a study: its evaluated seeds' run folders and what was left out."""

    name: str
    seeds: dict[int, Path]
    notes: list[str] = field(default_factory=list)

    def label(self, seed: int) -> str:
        return f"{self.name}/seed={seed}"


def skipped_folders(study: str | Path) -> list[str]:
    """A note for each folder of the study that is not a condition (no `seed=<s>/` folder in it),
    besides `interleave study`'s own `submitit/`: e.g. a frontier's output or a run put there."""
    return [
        f"{folder}: no seed=<s>/ folder, not a condition of the study: skipped"
        for folder in sorted(
            (p for p in Path(study).iterdir() if p.is_dir() and p.name != "submitit"),
            key=lambda p: natural_key(Path(p.name)),
        )
        if not any(sub.is_dir() and SEED_FOLDER.match(sub.name) for sub in folder.iterdir())
    ]


def study_conditions(study: str | Path) -> list[StudyCondition]:
    """The study's conditions in natural order, each with its seeds that have an evaluated point."""
    study = Path(study)
    if not study.is_dir():
        raise InterleaveError(f"{study}: no such folder")
    found = []
    for folder in sorted((p for p in study.iterdir() if p.is_dir()), key=lambda p: natural_key(Path(p.name))):
        seeds = {
            int(m.group(1)): sub for sub in folder.iterdir() if sub.is_dir() and (m := SEED_FOLDER.match(sub.name))
        }
        if not seeds:
            continue
        condition = StudyCondition(folder.name, {s: seeds[s] for s in sorted(seeds) if epoch_points(seeds[s])})
        condition.notes = [
            f"{folder.name}: seed={s} has no evaluated point yet ({seeds[s]}), left out"
            for s in sorted(seeds)
            if s not in condition.seeds
        ]
        found.append(condition)
    if not found:
        raise InterleaveError(
            f"{study}: no <condition>/seed=<s>/ run folder found (a study's output: interleave study)"
        )
    if not any(c.seeds for c in found):
        raise InterleaveError(f"{study}: no seed of any condition has an evaluated point yet")
    return found


def common_epoch(condition: StudyCondition, epoch: int | None) -> tuple[int, str | None]:
    """The epoch of the condition's row: `epoch` (every seed must have it), else the latest every
    seed reached, with a note when their last epochs differ."""
    points = {s: list(epoch_points(run)) for s, run in condition.seeds.items()}
    if epoch is not None:
        for s, found in points.items():
            if epoch not in found:
                raise InterleaveError(
                    f"{condition.seeds[s]}: no epoch point {epoch:02d} (available: {format_points(found)})"
                )
        return epoch, None
    shared = set.intersection(*map(set, points.values()))
    lasts = ", ".join(f"seed={s}: {max(found):02d}" for s, found in points.items())
    if not shared:
        raise InterleaveError(f"{condition.name}: its seeds share no evaluated epoch ({lasts})")
    chosen = max(shared)
    if len({max(found) for found in points.values()}) > 1:
        return chosen, (
            f"{condition.name}: its seeds reached different last epochs ({lasts}); its row is at epoch "
            f"{chosen:02d}, the last every seed reached"
        )
    return chosen, None


def mean_metrics(name: str, by_seed: dict[int, dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """The mean over seeds of every tag all seeds hold (the first seed's other keys kept), and a
    note naming the tags only some seeds hold."""
    layouts = {str(m.get("layout")) for m in by_seed.values()}
    if len(layouts) > 1:
        raise InterleaveError(
            f"{name}: its seeds were evaluated with different main layouts ({', '.join(sorted(layouts))})"
        )
    first = next(iter(by_seed.values()))
    out = {key: value for key, value in first.items() if parse_tag(key) is None}
    tags = list(dict.fromkeys(t for m in by_seed.values() for t in m if parse_tag(t) is not None))
    partial = []
    for tag in tags:
        values = [m.get(tag) for m in by_seed.values()]
        if any(v is None for v in values):
            partial.append(tag)
        else:
            out[tag] = math.fsum(values) / len(values)
    notes = [f"{name}: left out, not held by every seed's metrics: {', '.join(partial)}"] if partial else []
    return out, notes


def _seed_cell(count: int) -> str:
    return ONE_SEED if count == 1 else str(count)


@dataclass
class StudyReport:
    """What `--study` shows: the condition rows, the seeds' own rows, the forgetting summaries, notes."""

    table: list[Row]
    seed_table: list[Row]
    forgetting: list[forgetting.Forgetting]
    seed_forgetting: list[forgetting.Forgetting]
    notes: list[str]
    forgetting_notes: list[str]
    provenance: dict[str, dict[str, str]]
    benchmarks: list[dict[str, str]] = field(default_factory=list)  # `benchmarks.study_lines`, every condition's


def condition_rows(
    condition: StudyCondition, epoch: int, parser: str | None, bootstrap: int, seed: int
) -> tuple[list[Row], list[str], dict[str, dict[str, str]]]:
    """The condition's rows (means over seeds, hierarchical intervals), its notes, its seeds' provenance."""
    from interleave.provenance import recorded
    from interleave.tools.bootstrap import seed_intervals

    metrics: dict[int, dict[str, Any]] = {}
    answers: dict[int, dict[str, list[Prediction]] | None] = {}
    notes: list[str] = []
    for s, run in condition.seeds.items():
        file = epoch_points(run)[epoch]
        metrics[s], answers[s] = read_metrics(file), None
        if parser is not None:
            answers[s] = rescoring_answers(file, parser)
            metrics[s] = rescore_rows(metrics[s], answers[s], parser)
        elif bootstrap > 0 and answers_path(file).is_file():
            try:
                answers[s] = answer_rows(answers_path(file))
            except InterleaveError as err:
                notes.append(f"no intervals for {condition.name}: seed={s}: {err}")
        elif bootstrap > 0:
            notes.append(f"no intervals for {condition.name}: seed={s} has no saved answers ({answers_path(file)})")
    mean, left_out = mean_metrics(condition.name, metrics)
    table = run_rows(condition.name, epoch, mean)
    for row in table:
        row.update({"Study condition": condition.name, "Seeds": _seed_cell(len(metrics)), "_provenance": None})
    answered = {s: a for s, a in answers.items() if a is not None}
    if bootstrap > 0 and len(answered) == len(metrics):
        found = seed_intervals(
            list(answered.values()), [condition_prefixes(metrics[s], a) for s, a in answered.items()], bootstrap, seed
        )
        add_intervals(table, found, bootstrap, seed)
    if len(metrics) == 1:
        notes.append(f"{condition.name}: 1 seed (seed={next(iter(metrics))}): its interval is over queries only")
    return table, notes + left_out, {condition.label(s): recorded(m) for s, m in metrics.items()}


def study_report(
    study: str | Path,
    epoch: int | None = None,
    parser: str | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    per_seed: bool = False,
) -> StudyReport:
    """Everything `--study` shows for the study folder (see the module's docstring)."""
    from interleave.provenance import check_comparable

    out = StudyReport([], [], [], [], [], [], {})
    seen: list[tuple[str, dict[str, Any]]] = []  # every seed's metrics so far: one file and subset per benchmark
    conditions = study_conditions(study)
    out.notes += skipped_folders(study)
    for condition in conditions:
        out.notes += condition.notes
        if not condition.seeds:
            continue
        point, note = common_epoch(condition, epoch)
        out.notes += [note] if note else []
        table, notes, provenance = condition_rows(condition, point, parser, bootstrap, seed)
        out.table += table
        out.notes += notes
        out.provenance.update(provenance)
        out.benchmarks += condition_benchmarks(condition, point, bootstrap, seed, seen)
        if per_seed:
            for s, run in condition.seeds.items():
                for row in rows([run], point, parser, bootstrap, seed):
                    out.seed_table.append({**row, "Run": condition.label(s), "_provenance": None, "_note": None})
        loaded = [forgetting.load_points(run, condition.label(s), point, parser) for s, run in condition.seeds.items()]
        found = [p for p in loaded if not isinstance(p, str)]
        out.forgetting_notes += [p for p in loaded if isinstance(p, str)] + [p.note for p in found if p.note]
        try:
            if found and len(found) == len(loaded):
                out.forgetting.append(forgetting.seed_summary(condition.name, found, bootstrap, seed))
            if per_seed:
                out.seed_forgetting += [forgetting.run_summary(p, bootstrap, seed) for p in found]
        except InterleaveError as err:  # e.g. a seed's two points were asked different queries
            out.forgetting_notes.append(f"{condition.name}: no forgetting figures: {err}")
    check_comparable(out.provenance)
    return out


def condition_benchmarks(
    condition: StudyCondition, epoch: int, bootstrap: int, seed: int, seen: list[tuple[str, dict[str, Any]]]
) -> list[dict[str, str]]:
    """The condition's benchmark lines (`benchmarks.study_lines`) from each seed's rows at `epoch` and
    at epoch 00; a seed on another file or subset of a benchmark than one `seen` before is refused by name."""
    import json

    from interleave.tools.saved_answers import bench_rows

    seeds = []
    for s, run in condition.seeds.items():
        points = epoch_points(run)
        metrics = json.loads(points[epoch].read_text(encoding="utf-8"))
        seen.append((condition.label(s), metrics))
        benchmarks.check_same_benchmarks(seen)
        before = epoch != 0 and 0 in points and benchmarks.before_training(points[0])
        then = bench_rows(points[0]) if before else None
        seeds.append((bench_rows(points[epoch]), then))
    return benchmarks.study_lines(condition.name, epoch, seeds, bootstrap, seed) if any(r for r, _ in seeds) else []


def intervals_legend(report: StudyReport, bootstrap: int, seed: int) -> str:
    if not any(row.get("_bootstrap") for row in report.table):
        return "no intervals."
    return (
        f"[lo, hi] = 95 % hierarchical bootstrap interval from the saved answers: in each of {bootstrap} resamples, "
        "the condition's seeds are drawn with replacement, then the words with replacement and each drawn word's "
        "clips with replacement (one draw of words and clips shared by the drawn seeds, which answered the same "
        "queries); the resample's value is the mean of the drawn seeds' metrics on that draw "
        f"(--bootstrap {bootstrap} --seed {seed}). A condition with 1 seed: interval over queries only."
    )


def study_series(study: str | Path, epoch: int | None = None, parser: str | None = None) -> dict[str, list[Row]]:
    """Each condition's (and layout's) mean curve over its seeds, with `<column> min` / `<column>
    max` (the lowest and highest seed) at every epoch up to its row's that all its seeds reached."""
    from interleave.tools.report.figure import panels

    series: dict[str, list[Row]] = {}
    for condition in study_conditions(study):
        if not condition.seeds:
            continue
        last, _ = common_epoch(condition, epoch)
        shared = set.intersection(*(set(epoch_points(run)) for run in condition.seeds.values()))
        epochs = sorted(e for e in shared if e <= last)
        per_seed = [run_series(run, condition.label(s), parser, epochs) for s, run in condition.seeds.items()]
        layouts = list(dict.fromkeys(layout for found in per_seed for layout in found))
        for layout in layouts:
            points = []
            for e in epochs:
                point: Row = {"Epoch": e}
                for column, _ in panels():
                    values = [
                        p[column]
                        for found in per_seed
                        for p in found.get(layout, [])
                        if p["Epoch"] == e and p.get(column) is not None
                    ]
                    if len(values) == len(per_seed):  # every seed: never a mean of some
                        point.update(
                            {
                                column: math.fsum(values) / len(values),
                                f"{column} min": min(values),
                                f"{column} max": max(values),
                            }
                        )
                points.append(point)
            series[condition.name if len(layouts) == 1 else f"{condition.name} ({layout})"] = points
    return series


def to_markdown(report: StudyReport, study: str | Path, bootstrap: int, seed: int, rescored: str | None) -> str:
    """The study's Markdown: the table over seeds and its notes, the seeds' rows, the forgetting summary."""
    from interleave.tools.report.pairs import pair_notes
    from interleave.tools.report.table import LEGEND, markdown_table

    parts = [
        f"Study {Path(study).name}: each row is the mean over the condition's seeds (Seeds: how many) at the "
        "epoch shown.\n\n",
        markdown_table(report.table, LABELS),
        "\n",
        LEGEND,
        "\n",
        intervals_legend(report, bootstrap, seed),
        "\n",
    ]
    if rescored is not None:
        parts.append(f"Re-scored with the {rescored} parser (--parser {rescored}) from each point's saved answers.\n")
    below = report.notes + pair_notes(report.table) + provenance_notes(report.provenance)
    parts += [line + "\n" for line in below]
    if report.seed_table:
        parts += [
            "\nEach seed's own row (--per-seed; intervals over queries only):\n\n",
            markdown_table(report.seed_table, SEED_LABELS),
        ]
    if report.forgetting:
        parts += [
            "\n",
            forgetting.to_markdown(report.forgetting, report.forgetting_notes, bootstrap, seed, "Study condition"),
            "The study condition's figures are means over its seeds; their intervals draw the seeds first, "
            "as the table's.\n",
        ]
    if report.seed_forgetting:
        parts += ["\n", forgetting.to_markdown(report.seed_forgetting, [], bootstrap, seed)]
    parts.append(benchmarks.study_markdown(report.benchmarks, bootstrap))
    return "".join(parts)
