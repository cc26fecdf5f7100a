"""Table-2-style results report from the evaluation metrics of one or more runs.

`interleave report RUN_DIR... [--epoch N] [--out DIR] [--parser paper|extended]` reads
`predictions/epoch=NN.metrics.json` (written by the evaluation callback; 00 = before training)
of each run and prints one row per run and prompt layout, in the column order of the paper's
Table 2, plus the unparsed-answer shares and the text-only control. It writes the same table as
`DIR/report.md` (percentages) and `DIR/report.csv` (raw fractions, for pandas).

The Parser column names the answer parser (`interleave.shard.parse_answer`'s rules) the figures
come from: the one the metrics file records, or "unknown" for a file written before the
evaluation recorded it (those came from the rules of their time, which cannot be told from the
file). With `--parser`, nothing is read from the metrics files' SHARD figures: every point's
saved answers (`predictions/epoch=NN.jsonl`) are parsed again with those rules and the metrics
recomputed by the evaluation's own `condition_metrics`, without generating anything.

A RUN_DIR is either a run (a logger version folder holding `predictions/`) or a parent folder,
in which case every run below it is reported.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interleave.errors import InterleaveError, report_errors
from interleave.files import atomic_open, write_text_atomic

Row = dict[str, Any]

METRICS_DIR = "predictions"
METRICS_FILE = re.compile(r"^epoch=(\d+)\.metrics\.json$")
METRIC_NAMES = ("accuracy", "precision", "recall", "f1", "unparsed")
RELATIONS = {"Syno": "synonym", "Hyper": "hypernym"}
TEXT_LAYOUT = "text"
MISSING = "–"

# Column name -> tag suffix after the layout prefix ("val/" or "val/<layout>/").
_CONDITION_COLUMNS: dict[str, str] = {
    "Identity Acc": "identity/accuracy",
    "Syno Acc": "shard/synonym/accuracy",
    "Hyper Acc": "shard/hypernym/accuracy",
    "Syno P": "shard/synonym/precision",
    "Hyper P": "shard/hypernym/precision",
    "Syno R": "shard/synonym/recall",
    "Hyper R": "shard/hypernym/recall",
    "Syno F1": "shard/synonym/f1",
    "Hyper F1": "shard/hypernym/f1",
    "Syno unparsed": "shard/synonym/unparsed",
    "Hyper unparsed": "shard/hypernym/unparsed",
}
# Text-only control (same for every condition row of a run): column -> full tag.
_TEXT_COLUMNS: dict[str, str] = {
    "Text Syno Acc": "val/text/shard/synonym/accuracy",
    "Text Hyper Acc": "val/text/shard/hypernym/accuracy",
    "Text Syno F1": "val/text/shard/synonym/f1",
    "Text Hyper F1": "val/text/shard/hypernym/f1",
}
LABEL_COLUMNS = ("Run", "Condition", "Epoch", "Parser")
UNKNOWN_PARSER = "unknown"  # a metrics file written before the evaluation recorded its parser
VALUE_COLUMNS = tuple(_CONDITION_COLUMNS) + tuple(_TEXT_COLUMNS)
COLUMNS = LABEL_COLUMNS + VALUE_COLUMNS

LEGEND = (
    "Values are percentages; unparsed = share of answers that were neither yes nor no; "
    "text = the word replaces the audio (the LLM's ceiling); Parser = the answer parser's rules "
    "the figures come from (paper, extended; unknown = not recorded in the metrics file)."
)

_METRIC_TAG = re.compile(r"^val/.+/(" + "|".join(METRIC_NAMES) + r")$")
_EXTRA_LAYOUT_TAG = re.compile(r"^val/([^/]+)/(?:identity|shard)/")
_EVALUATION_TAG = re.compile(r"^val/(?:[^/]+/)?(?:identity|shard)/")  # every SHARD and identity figure


def _natural_key(path: Path) -> list[Any]:
    """Sort key so that version_2 comes before version_10."""
    return [[int(p) if p.isdigit() else p for p in re.split(r"(\d+)", part)] for part in path.parts]


def epoch_points(run: Path) -> dict[int, Path]:
    """The evaluated epoch points of a run folder: point NN -> its metrics file."""
    folder = Path(run) / METRICS_DIR
    if not folder.is_dir():
        return {}
    points: dict[int, Path] = {}
    for file in folder.iterdir():
        match = METRICS_FILE.match(file.name)
        if match and file.is_file():
            points[int(match.group(1))] = file
    return dict(sorted(points.items()))


def find_runs(path: str | Path) -> list[Path]:
    """The run folders of RUN_DIR: itself if it holds metrics, else every run below it, sorted."""
    path = Path(path)
    if not path.is_dir():
        raise InterleaveError(f"{path}: no such folder")
    if epoch_points(path):
        return [path]
    runs = [p.parent for p in path.rglob(METRICS_DIR) if p.is_dir() and epoch_points(p.parent)]
    if not runs:
        raise InterleaveError(f"{path}: no run with {METRICS_DIR}/epoch=NN.metrics.json found")
    return sorted(runs, key=lambda p: _natural_key(p.relative_to(path)))


def _format_points(points: Sequence[int]) -> str:
    return ", ".join(f"{p:02d}" for p in points) or "none"


def _select_point(run: Path, epoch: int | None) -> tuple[int, Path]:
    """The (point, file) to report: the latest one, or `epoch` if given."""
    points = epoch_points(run)
    if not points:
        raise InterleaveError(f"{run}: no {METRICS_DIR}/epoch=NN.metrics.json found")
    if epoch is None:
        return next(reversed(points.items()))
    if epoch not in points:
        raise InterleaveError(f"{run}: no epoch point {epoch:02d} (available: {_format_points(list(points))})")
    return epoch, points[epoch]


def read_metrics(file: str | Path) -> dict[str, Any]:
    """Read and check one metrics file; metric values must be numbers (null/NaN = missing)."""
    file = Path(file)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InterleaveError(f"{file}: not a readable metrics JSON file ({err})") from None
    if not isinstance(data, dict):
        raise InterleaveError(f"{file}: expected a JSON object of tag -> value, got {type(data).__name__}")
    for tag, value in data.items():
        if not _METRIC_TAG.match(tag) or value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InterleaveError(f"{file}: {tag} should be a number, got {value!r}")
    return data


def read_predictions(file: str | Path) -> list[dict[str, Any]]:
    """Read and check the rows of one predictions file (the evaluation's `epoch=NN.jsonl`)."""
    from interleave.shard import ANSWERS, TASKS
    from interleave.shard import RELATIONS as SHARD_RELATIONS

    file = Path(file)
    try:
        lines = file.read_text(encoding="utf-8").split("\n")  # not splitlines(): answers may hold U+2028
    except (OSError, UnicodeDecodeError) as err:
        raise InterleaveError(f"{file}: cannot read the saved answers ({err})") from None
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{file}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise InterleaveError(f"{where}: not JSON ({err})") from None
        if not isinstance(row, dict):
            raise InterleaveError(f"{where}: expected a JSON object, got {type(row).__name__}")
        if row.get("task") not in TASKS:
            raise InterleaveError(f"{where}: task {row.get('task')!r} is none of {', '.join(TASKS)}")
        if not isinstance(row.get("condition"), str) or not row["condition"]:
            raise InterleaveError(f"{where}: no condition")
        answers = row.get("answers")
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise InterleaveError(f"{where}: answers must be a list of strings")
        if row["task"] in SHARD_RELATIONS and row.get("truth") not in ANSWERS:
            raise InterleaveError(f"{where}: truth {row.get('truth')!r} is none of {', '.join(ANSWERS)}")
        if row["task"] == "identity" and not isinstance(row.get("label"), str):
            raise InterleaveError(f"{where}: an identity row needs its label")
        out.append(row)
    return out


def rescore(metrics_file: str | Path, metrics: dict[str, Any], parser: str) -> dict[str, Any]:
    """`metrics` with every SHARD and identity figure recomputed from the point's saved answers
    (`epoch=NN.jsonl` beside `metrics_file`), the yes/no answers parsed with `parser`'s rules;
    the metrics are the evaluation's own (`interleave.shard.evaluate.condition_metrics`)."""
    from interleave.metrics import contains_label
    from interleave.shard import parse_answer
    from interleave.shard.evaluate import condition_metrics

    metrics_file = Path(metrics_file)
    answers_file = metrics_file.with_name(metrics_file.name.removesuffix(".metrics.json") + ".jsonl")
    if not answers_file.is_file():
        raise InterleaveError(f"{answers_file}: not found; --parser re-scores the saved answers, which it needs")
    by_condition: dict[str, list[dict[str, Any]]] = {}
    for row in read_predictions(answers_file):
        if row["task"] == "identity":
            parsed = [contains_label(a, row["label"]) for a in row["answers"]]
        else:
            parsed = [parse_answer(a, rules=parser) for a in row["answers"]]
        by_condition.setdefault(row["condition"], []).append({**row, "parsed": parsed})
    # The primary layout is logged under plain `val/`; files that do not name it list it first.
    primary = metrics.get("layout") or next((c for c in by_condition if c != TEXT_LAYOUT), None)
    out = {tag: value for tag, value in metrics.items() if not _EVALUATION_TAG.match(tag)}
    for condition, found in by_condition.items():
        out.update(condition_metrics(found, "val" if condition == primary else f"val/{condition}"))
    if primary is not None:
        out["layout"] = primary
    out["parser"] = parser
    return out


def load_run(path: str | Path, epoch: int | None = None) -> dict[str, Any]:
    """The metrics of one epoch point of a run (the latest unless `epoch` is given)."""
    _, file = _select_point(Path(path), epoch)
    return read_metrics(file)


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
    found = {m.group(1) for tag in metrics if (m := _EXTRA_LAYOUT_TAG.match(tag))}
    found -= {TEXT_LAYOUT, "identity", "shard", primary}
    return sorted(found)


def run_rows(run: str, epoch: int, metrics: dict[str, Any]) -> list[Row]:
    """The rows of one run's metrics: the primary layout, then each extra layout (fractions or None)."""
    text = {column: _value(metrics, tag) for column, tag in _TEXT_COLUMNS.items()}
    conditions = [(str(metrics.get("layout") or "primary"), "val/")]
    conditions += [(layout, f"val/{layout}/") for layout in extra_layouts(metrics)]
    out = []
    for condition, prefix in conditions:
        row: Row = {"Run": run, "Condition": condition, "Epoch": epoch,
                    "Parser": str(metrics.get("parser") or UNKNOWN_PARSER)}
        row.update({column: _value(metrics, prefix + suffix) for column, suffix in _CONDITION_COLUMNS.items()})
        row.update(text)
        out.append(row)
    return out


def _run_label(run: Path, run_dir: Path) -> str:
    """The run folder relative to the RUN_DIR's parent (its grandparent when RUN_DIR is the run
    itself), e.g. `demo/version_3` either way."""
    base = run_dir.resolve().parent
    if run.resolve() == run_dir.resolve():
        base = base.parent
    try:
        return run.resolve().relative_to(base).as_posix()
    except ValueError:
        return run.as_posix()


def rows(run_dirs: Sequence[str | Path], epoch: int | None = None, parser: str | None = None) -> list[Row]:
    """All report rows for the given RUN_DIRs, at the latest epoch point or at `epoch`; with
    `parser` ("paper" or "extended"), re-scored from the saved answers with those rules."""
    if parser is not None:
        from interleave.shard import PARSERS

        if parser not in PARSERS:
            raise InterleaveError(f"unknown parser {parser!r}; expected one of {', '.join(PARSERS)}")
    out: list[Row] = []
    seen: set[Path] = set()
    for run_dir in map(Path, run_dirs):
        for run in find_runs(run_dir):
            if run.resolve() in seen:
                continue
            seen.add(run.resolve())
            point, file = _select_point(run, epoch)
            metrics = read_metrics(file)
            if parser is not None:
                metrics = rescore(file, metrics, parser)
            out.extend(run_rows(_run_label(run, run_dir), point, metrics))
    return out


def _cell(column: str, value: Any) -> str:
    if column == "Epoch":
        return f"{value:02d}" if isinstance(value, int) else str(value)
    if column in VALUE_COLUMNS:
        return MISSING if value is None else f"{100 * value:.2f}"
    return str(value).replace("|", "\\|")


def to_markdown(table: Sequence[Row], rescored: str | None = None) -> str:
    """A GitHub Markdown table of the rows (percentages, 2 decimals) with a one-line legend, and
    a line saying so when the figures were re-scored with the `rescored` parser."""
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "| " + " | ".join("---" if c in ("Run", "Condition", "Parser") else "---:" for c in COLUMNS) + " |",
    ]
    for row in table:
        lines.append("| " + " | ".join(_cell(c, row.get(c)) for c in COLUMNS) + " |")
    note = ""
    if rescored is not None:
        note = (f"Re-scored with the {rescored} parser (--parser {rescored}) from each point's saved answers "
                f"(predictions/epoch=NN.jsonl), not the figures logged during training.\n")
    return "\n".join(lines) + "\n\n" + LEGEND + "\n" + note


def to_csv(table: Sequence[Row], path: str | Path) -> None:
    """Write the rows as CSV with raw fractions; missing values are empty cells."""
    path = Path(path)
    try:
        with atomic_open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(COLUMNS))
            writer.writeheader()
            for row in table:
                writer.writerow({c: "" if row.get(c) is None else row[c] for c in COLUMNS})
    except OSError as err:
        raise InterleaveError(f"{path}: cannot write ({err.strerror or err})") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the report and write `report.md` and `report.csv` into --out."""
    parser = argparse.ArgumentParser(prog="interleave report", description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="run (version) folder or a folder of runs")
    parser.add_argument("--epoch", type=int, default=None, help="epoch point to report (default: the latest of each run)")
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for report.md and report.csv (default: .)")
    parser.add_argument("--parser", default=None, metavar="RULES",
                        help="re-score the saved answers with these parse_answer rules (paper or extended) "
                             "instead of reading the logged figures")
    args = parser.parse_args(argv)
    return report_errors(lambda: report(args))


def report(args: argparse.Namespace) -> None:
    """Build the table `main`'s arguments ask for, print it and write its two files."""
    table = rows(args.run_dirs, args.epoch, args.parser)
    markdown = to_markdown(table, rescored=args.parser)
    md_path, csv_path = args.out / "report.md", args.out / "report.csv"
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(md_path, markdown)
    except OSError as err:
        raise InterleaveError(f"{err.filename or args.out}: cannot write ({err.strerror or err})") from None
    to_csv(table, csv_path)
    print(markdown, end="")
    print(f"wrote {md_path} and {csv_path}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
