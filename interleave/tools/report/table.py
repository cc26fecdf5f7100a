"""The report's Table 2: its columns (from the task registry), a run's rows (one per prompt layout,
with the text-only control), their 95 % intervals, and the Markdown and CSV it is written as.

`rows` builds the table of some runs at one point each; `interleave.tools.report.study` builds the
same rows from a study condition's seeds; both render through `to_markdown` and `to_csv`.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interleave.errors import InterleaveError
from interleave.eval.predictions import CKPT_PATH
from interleave.eval.tasks import COLUMN_SUFFIX, CONDITIONS, TASKS, metric_tag, parse_tag
from interleave.files import atomic_open
from interleave.tools.report.pairs import pair_figures, pair_notes
from interleave.tools.report.runs import (
    TEXT_LAYOUT,
    check_parser,
    condition_prefixes,
    epoch_points,
    labelled_runs,
    point_metrics,
    read_metrics,
    rescore_rows,
    rescoring_answers,
    select_point,
)
from interleave.tools.saved_answers import answer_rows, answers_path

Row = dict[str, Any]

MISSING = "–"
TEXT_METRICS = ("accuracy", "f1")  # the text control's columns


def condition_columns() -> dict[str, tuple[str, str]]:
    """Column name -> (task, metric) under a row's own layout: every registry task with a Table 2
    column (`Task.column`), metric by metric ("Identity Acc", "Syno Acc", "Hyper Acc", "Syno P", ...)."""
    tasks = [t for t in TASKS.values() if t.column is not None]
    return {f"{t.column} {COLUMN_SUFFIX[m]}": (t.name, m) for m in COLUMN_SUFFIX for t in tasks if m in t.metrics}


def text_columns() -> dict[str, tuple[str, str]]:
    """The text-only control's columns (the same for every row of a run): "Text Syno Acc", ..."""
    tasks = [t for t in TASKS.values() if t.column is not None and CONDITIONS[TEXT_LAYOUT].asks(t)]
    return {f"Text {t.column} {COLUMN_SUFFIX[m]}": (t.name, m) for m in TEXT_METRICS for t in tasks}


LABEL_COLUMNS = ("Run", "Condition", "Epoch", "Parser")
UNKNOWN_PARSER = "unknown"  # a metrics file written before the evaluation recorded its parser


def value_columns() -> tuple[str, ...]:
    return tuple(condition_columns()) + tuple(text_columns())


def columns(labels: Sequence[str] = LABEL_COLUMNS) -> tuple[str, ...]:
    """The table's columns, from the task registry (`interleave.eval.tasks`)."""
    return tuple(labels) + value_columns()


LEGEND = (
    "Values are percentages; unparsed = share of answers that were neither yes nor no; "
    "text = the word replaces the audio (the LLM's ceiling); Parser = the answer parser's rules "
    "the figures come from (paper, extended; unknown = not recorded in the metrics file)."
)


def _value(metrics: dict[str, Any], tag: str) -> float | None:
    value = metrics.get(tag)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if math.isnan(value):
        return None
    return float(value)


def extra_layouts(metrics: dict[str, Any]) -> list[str]:
    """Layouts besides the primary one and the text control, from their `val/<layout>/...` tags."""
    primary = str(metrics.get("layout", ""))
    found = {parsed.condition for tag in metrics if (parsed := parse_tag(tag)) is not None}
    return sorted(found - {None, TEXT_LAYOUT, primary})


def run_rows(run: str, epoch: int, metrics: dict[str, Any]) -> list[Row]:
    """The rows of one run's metrics: the primary layout, then each extra layout (fractions or None)."""
    from interleave.provenance import recorded

    text = {
        column: _value(metrics, metric_tag(f"val/{TEXT_LAYOUT}", *task_metric))
        for column, task_metric in text_columns().items()
    }
    conditions = [(str(metrics.get("layout") or "primary"), "val")]
    conditions += [(layout, f"val/{layout}") for layout in extra_layouts(metrics)]
    out = []
    for condition, prefix in conditions:
        row: Row = {
            "Run": run,
            "Condition": condition,
            "Epoch": epoch,
            "Parser": str(metrics.get("parser") or UNKNOWN_PARSER),
        }
        row.update(
            {
                column: _value(metrics, metric_tag(prefix, *task_metric))
                for column, task_metric in condition_columns().items()
            }
        )
        row.update(text)
        row.update({"_prefix": prefix, "_provenance": recorded(metrics)})  # not columns: for intervals, notes
        row["_pair"] = pair_figures(metrics, prefix)  # tasks outside Table 2 (the pair): listed under the table
        out.append(row)
    return out


def add_intervals(table: Sequence[Row], found: dict[str, tuple[float, float]], resamples: int, seed: int) -> None:
    """Put `found`'s intervals (tag -> (lo, hi), `bootstrap.intervals`) into a run's rows as
    `<column> lo` / `<column> hi`, for the columns that have a value."""
    for row in table:
        tags = {c: metric_tag(row["_prefix"], *tm) for c, tm in condition_columns().items()} | {
            c: metric_tag(f"val/{TEXT_LAYOUT}", *tm) for c, tm in text_columns().items()
        }
        for column, tag in tags.items():
            if row.get(column) is not None and tag in found:
                row[f"{column} lo"], row[f"{column} hi"] = found[tag]
                row["_bootstrap"] = (resamples, seed)


def rows(
    run_dirs: Sequence[str | Path],
    epoch: int | None = None,
    parser: str | None = None,
    bootstrap: int = 0,
    seed: int = 0,
) -> list[Row]:
    """All report rows for the given RUN_DIRs, at the latest epoch point or at `epoch`; with
    `parser` ("paper" or "extended"), re-scored from the saved answers with those rules; with
    `bootstrap` resamples, each value's 95 % interval (`interleave.tools.bootstrap`) from the
    saved answers, where the run has them. Runs evaluated on different SHARD files are refused."""
    from interleave.provenance import check_comparable
    from interleave.tools.bootstrap import intervals

    check_parser(parser)
    out: list[Row] = []
    for run, label in labelled_runs(run_dirs):
        point, file = select_point(run, epoch)
        metrics = read_metrics(file)
        answers, note = None, None
        if parser is not None:  # read once: the re-scoring and the intervals use the same answers
            answers = rescoring_answers(file, parser)
            metrics = rescore_rows(metrics, answers, parser)
        if bootstrap > 0 and answers is None:
            if not answers_path(file).is_file():
                note = f"no intervals for {label}: no saved answers ({answers_path(file)})"
            else:
                try:
                    answers = answer_rows(answers_path(file), parser)
                except InterleaveError as err:
                    note = f"no intervals for {label}: {err}"
        table = run_rows(label, point, metrics)
        if answers and bootstrap > 0:
            add_intervals(
                table, intervals(answers, condition_prefixes(metrics, answers), bootstrap, seed), bootstrap, seed
            )
        for row in table:
            row["_note"] = note
            row["_checkpoint"] = checkpoint_note(label, point, metrics)
        out.extend(table)
    check_comparable({row["Run"]: row["_provenance"] for row in out})
    return out


def checkpoint_note(label: str, point: int, metrics: dict[str, Any]) -> str | None:
    """The line that says a point is a checkpoint evaluated on its own (`validate --ckpt_path`), or None."""
    if metrics.get(CKPT_PATH) is None:
        return None
    step, seeds = metrics.get("ckpt_global_step"), metrics.get("seed_epoch")
    return (
        f"{label}: epoch {point:02d} is the checkpoint {metrics[CKPT_PATH]}"
        + (f" (global step {step})" if step is not None else "")
        + " evaluated on its own (train.py validate --ckpt_path)"
        + (f", its answers drawn with the seeds of epoch {seeds:02d}" if isinstance(seeds, int) else "")
    )


def run_series(
    run: Path, label: str, parser: str | None = None, epochs: Sequence[int] | None = None
) -> dict[str, list[Row]]:
    """Every evaluated point of one run (or those of `epochs`) by condition, the text control
    included where the run has it: condition -> [{"Epoch": N, column: fraction or None, ...}]."""
    by_condition: dict[str, list[Row]] = {}
    for point, file in epoch_points(run).items():
        if epochs is not None and point not in epochs:
            continue
        table = run_rows(label, point, point_metrics(file, parser))
        for row in table:
            by_condition.setdefault(row["Condition"], []).append(row)
        text = {
            "Epoch": point,
            **{column.removeprefix("Text "): table[0][column] for column in text_columns() if column.endswith(" F1")},
        }
        if any(value is not None for key, value in text.items() if key != "Epoch"):
            by_condition.setdefault(TEXT_LAYOUT, []).append(text)
    return by_condition


def _cell(column: str, value: Any, lo: float | None = None, hi: float | None = None) -> str:
    if column == "Epoch":
        return f"{value:02d}" if isinstance(value, int) else str(value)
    if column in value_columns() and value is not None and lo is not None and hi is not None:
        return f"{100 * value:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
    if column in value_columns():
        return MISSING if value is None else f"{100 * value:.2f}"
    return str(value).replace("|", "\\|")


def _short(value: str) -> str:
    return value[:12] if re.fullmatch(r"[0-9a-f]{13,}", value) else value


def provenance_notes(runs: dict[str, dict[str, str]]) -> list[str]:
    """Each run's provenance (`interleave.provenance.recorded`) and the differences between them."""
    from interleave.provenance import check_comparable

    if not runs:
        return []
    out = ["Provenance (unknown = not recorded in the metrics file):"]
    out += [
        f"- {run}: code {_short(p['code_version'])}, config {_short(p['config_hash'])}, "
        f"SHARD {_short(p['shard_hash'])}, tokenization {p['tokenization']}"
        + (f", SHARD subset: {p['shard_subset']}" if p.get("shard_subset") else "")
        for run, p in runs.items()
    ]
    return out + [f"Note: {line}." for line in check_comparable(runs)]


def notes(table: Sequence[Row]) -> list[str]:
    """The lines under the table: the intervals' legend, each run's provenance, its differences."""
    out = []
    if bootstrap := next((row["_bootstrap"] for row in table if row.get("_bootstrap")), None):
        out.append(
            f"[lo, hi] = 95 % bootstrap interval from the saved answers: {bootstrap[0]} resamples of the words, "
            f"then of the clips within each word (--bootstrap {bootstrap[0]} --seed {bootstrap[1]})."
        )
    out += sorted({row["_note"] for row in table if row.get("_note")})
    out += list(dict.fromkeys(row["_checkpoint"] for row in table if row.get("_checkpoint")))
    out += pair_notes(table)
    return out + provenance_notes({row["Run"]: row["_provenance"] for row in table if row.get("_provenance")})


def markdown_table(table: Sequence[Row], labels: Sequence[str] = LABEL_COLUMNS) -> str:
    """The rows as a GitHub Markdown table (percentages, 2 decimals; 1 with a 95 % interval)."""
    shown = columns(labels)
    lines = [
        "| " + " | ".join(shown) + " |",
        "| " + " | ".join("---:" if c in value_columns() or c == "Epoch" else "---" for c in shown) + " |",
    ]
    for row in table:
        lines.append(
            "| " + " | ".join(_cell(c, row.get(c), row.get(f"{c} lo"), row.get(f"{c} hi")) for c in shown) + " |"
        )
    return "\n".join(lines) + "\n"


def to_markdown(table: Sequence[Row], rescored: str | None = None) -> str:
    """The Markdown table of the rows with a one-line legend, a line saying so when the figures
    were re-scored with the `rescored` parser, and the `notes`."""
    note = ""
    if rescored is not None:
        note = (
            f"Re-scored with the {rescored} parser (--parser {rescored}) from each point's saved answers "
            f"(predictions/epoch=NN.jsonl), not the figures logged during training.\n"
        )
    below = "".join(line + "\n" for line in notes(table))
    return markdown_table(table) + "\n" + LEGEND + "\n" + note + below


def csv_columns(table: Sequence[Row], labels: Sequence[str] = LABEL_COLUMNS) -> list[str]:
    """The columns, then `<column> lo` / `<column> hi` for every value column when the table has intervals."""
    if not any(row.get("_bootstrap") for row in table):
        return list(columns(labels))
    return list(columns(labels)) + [f"{c} {end}" for c in value_columns() for end in ("lo", "hi")]


def write_csv(path: str | Path, fields: Sequence[str], table: Sequence[Row]) -> None:
    """Write the rows' `fields` as CSV through the atomic writer; None is an empty cell."""
    path = Path(path)
    try:
        with atomic_open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(fields))
            writer.writeheader()
            for row in table:
                writer.writerow({c: "" if row.get(c) is None else row[c] for c in fields})
    except OSError as err:
        raise InterleaveError(f"{path}: cannot write ({err.strerror or err})") from None


def to_csv(table: Sequence[Row], path: str | Path, labels: Sequence[str] = LABEL_COLUMNS) -> None:
    """Write the rows as CSV with raw fractions; missing values are empty cells."""
    write_csv(path, csv_columns(table, labels), table)
