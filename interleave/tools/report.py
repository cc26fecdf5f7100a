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
recomputed by the evaluation's own `condition_metrics`, without generating anything. Answers the
evaluation stopped at their verdict (its default; `cut` in the saved answers) are re-scored only
by the parser that cut them: another parser is refused, since it may need the rest of the text.

Each value read from a point with saved answers comes with its 95 % bootstrap interval
(`interleave.tools.bootstrap`: words resampled, then clips within a word; `--bootstrap N`
resamples, 1000 by default, 0 for none; `--seed`), shown as `58.3 [52.1, 64.0]` and written to
the CSV as `<column> lo` / `<column> hi`. `--compare RUN_A RUN_B` adds the paired difference
B - A of every metric, both runs resampled with the same words and clips. `--plot` writes
`DIR/curves.png`: synonym F1, hypernym F1 and identity accuracy against epochs, every point of
every run (`interleave.tools.report_figure`).

Runs are only put side by side when they were evaluated on the same SHARD file: the metrics
files' `shard_hash` (`interleave.provenance`) must agree, or the report stops. Other
differences (code version, tokenization rule, parser) are flagged under the table; a file
written before these were recorded shows them as unknown.

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
from interleave.shard.predictions import Prediction
from interleave.shard.tasks import COLUMN_SUFFIX, CONDITIONS, TASKS, condition_prefix, metric_tag, parse_tag
from interleave.tools.report_pairs import pair_figures, pair_notes
from interleave.tools.report_reliance import reliance_section
from interleave.tools.saved_answers import answer_rows, answers_path, read_predictions  # noqa: F401 (re-exported)

Row = dict[str, Any]

METRICS_DIR = "predictions"
METRICS_FILE = re.compile(r"^epoch=(\d+)\.metrics\.json$")
TEXT_LAYOUT = "text"
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


def columns() -> tuple[str, ...]:
    """The table's columns, from the task registry (`interleave.shard.tasks`)."""
    return LABEL_COLUMNS + value_columns()


COLUMNS = columns()  # the paper's: what a run of the registry as shipped reports

LEGEND = (
    "Values are percentages; unparsed = share of answers that were neither yes nor no; "
    "text = the word replaces the audio (the LLM's ceiling); Parser = the answer parser's rules "
    "the figures come from (paper, extended; unknown = not recorded in the metrics file)."
)


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
        if parse_tag(tag) is None or value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InterleaveError(f"{file}: {tag} should be a number, got {value!r}")
    return data


def condition_prefixes(metrics: dict[str, Any], by_condition: dict[str, Any]) -> dict[str, str]:
    """Each condition's tag prefix: the primary layout is logged under plain `val/`; files that do
    not name it list it first."""
    primary = metrics.get("layout") or next((c for c in by_condition if c != TEXT_LAYOUT), None)
    return {c: condition_prefix(c, primary) for c in by_condition}


def rescore_rows(metrics: dict[str, Any], by_condition: dict[str, list[Prediction]], parser: str) -> dict[str, Any]:
    """`metrics` with every SHARD and identity figure recomputed from `by_condition` (`answer_rows`)."""
    from interleave.shard.evaluate import condition_metrics

    out = {tag: value for tag, value in metrics.items() if parse_tag(tag) is None}
    for condition, prefix in condition_prefixes(metrics, by_condition).items():
        out.update(condition_metrics(by_condition[condition], prefix))
        if prefix == "val":  # the primary layout
            out["layout"] = condition
    out["parser"] = parser
    return out


def rescoring_answers(metrics_file: str | Path, parser: str) -> dict[str, list[Prediction]]:
    """The point's saved answers (`epoch=NN.jsonl` beside `metrics_file`) by condition, the yes/no
    answers parsed with `parser`'s rules; refused when the point saved none."""
    answers_file = answers_path(metrics_file)
    if not answers_file.is_file():
        raise InterleaveError(f"{answers_file}: not found; --parser re-scores the saved answers, which it needs")
    return answer_rows(answers_file, parser)


def rescore(metrics_file: str | Path, metrics: dict[str, Any], parser: str) -> dict[str, Any]:
    """`metrics` with every SHARD and identity figure recomputed from the point's saved answers,
    parsed with `parser`'s rules; the metrics are the evaluation's own
    (`interleave.shard.evaluate.condition_metrics`)."""
    return rescore_rows(metrics, rescoring_answers(metrics_file, parser), parser)


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
    found = {parsed.condition for tag in metrics if (parsed := parse_tag(tag)) is not None}
    return sorted(found - {None, TEXT_LAYOUT, primary})


def run_rows(run: str, epoch: int, metrics: dict[str, Any]) -> list[Row]:
    """The rows of one run's metrics: the primary layout, then each extra layout (fractions or None)."""
    from interleave.provenance import recorded

    text = {column: _value(metrics, metric_tag(f"val/{TEXT_LAYOUT}", *task_metric))
            for column, task_metric in text_columns().items()}
    conditions = [(str(metrics.get("layout") or "primary"), "val")]
    conditions += [(layout, f"val/{layout}") for layout in extra_layouts(metrics)]
    out = []
    for condition, prefix in conditions:
        row: Row = {"Run": run, "Condition": condition, "Epoch": epoch,
                    "Parser": str(metrics.get("parser") or UNKNOWN_PARSER)}
        row.update({column: _value(metrics, metric_tag(prefix, *task_metric))
                    for column, task_metric in condition_columns().items()})
        row.update(text)
        row.update({"_prefix": prefix, "_provenance": recorded(metrics)})  # not columns: for intervals, notes
        row["_pair"] = pair_figures(metrics, prefix)  # tasks outside Table 2 (the pair): listed under the table
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


def _runs(run_dirs: Sequence[str | Path]) -> list[tuple[Path, str]]:
    """(run folder, its label) of every run below the RUN_DIRs, each once."""
    out, seen = [], set()
    for run_dir in map(Path, run_dirs):
        for run in find_runs(run_dir):
            if run.resolve() not in seen:
                seen.add(run.resolve())
                out.append((run, _run_label(run, run_dir)))
    return out


def _check_parser(parser: str | None) -> None:
    from interleave.shard import PARSERS

    if parser is not None and parser not in PARSERS:
        raise InterleaveError(f"unknown parser {parser!r}; expected one of {', '.join(PARSERS)}")


def add_intervals(table: Sequence[Row], found: dict[str, tuple[float, float]], resamples: int, seed: int) -> None:
    """Put `found`'s intervals (tag -> (lo, hi), `bootstrap.intervals`) into a run's rows as
    `<column> lo` / `<column> hi`, for the columns that have a value."""
    for row in table:
        tags = ({c: metric_tag(row["_prefix"], *tm) for c, tm in condition_columns().items()}
                | {c: metric_tag(f"val/{TEXT_LAYOUT}", *tm) for c, tm in text_columns().items()})
        for column, tag in tags.items():
            if row.get(column) is not None and tag in found:
                row[f"{column} lo"], row[f"{column} hi"] = found[tag]
                row["_bootstrap"] = (resamples, seed)


def rows(run_dirs: Sequence[str | Path], epoch: int | None = None, parser: str | None = None,
         bootstrap: int = 0, seed: int = 0) -> list[Row]:
    """All report rows for the given RUN_DIRs, at the latest epoch point or at `epoch`; with
    `parser` ("paper" or "extended"), re-scored from the saved answers with those rules; with
    `bootstrap` resamples, each value's 95 % interval (`interleave.tools.bootstrap`) from the
    saved answers, where the run has them. Runs evaluated on different SHARD files are refused."""
    from interleave.provenance import check_comparable
    from interleave.tools.bootstrap import intervals

    _check_parser(parser)
    out: list[Row] = []
    for run, label in _runs(run_dirs):
        point, file = _select_point(run, epoch)
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
            add_intervals(table, intervals(answers, condition_prefixes(metrics, answers), bootstrap, seed),
                          bootstrap, seed)
        for row in table:
            row["_note"] = note
        out.extend(table)
    check_comparable({row["Run"]: row["_provenance"] for row in out})
    return out


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


def notes(table: Sequence[Row]) -> list[str]:
    """The lines under the table: the intervals' legend, each run's provenance, its differences."""
    from interleave.provenance import check_comparable

    out = []
    if bootstrap := next((row["_bootstrap"] for row in table if row.get("_bootstrap")), None):
        out.append(f"[lo, hi] = 95 % bootstrap interval from the saved answers: {bootstrap[0]} resamples of the words, "
                   f"then of the clips within each word (--bootstrap {bootstrap[0]} --seed {bootstrap[1]}).")
    out += sorted({row["_note"] for row in table if row.get("_note")})
    out += pair_notes(table)
    runs = {row["Run"]: row["_provenance"] for row in table if row.get("_provenance")}
    if runs:
        out.append("Provenance (unknown = not recorded in the metrics file):")
        out += [f"- {run}: code {_short(p['code_version'])}, config {_short(p['config_hash'])}, "
                f"SHARD {_short(p['shard_hash'])}, tokenization {p['tokenization']}" for run, p in runs.items()]
        out += [f"Note: {line}." for line in check_comparable(runs)]
    return out


def to_markdown(table: Sequence[Row], rescored: str | None = None) -> str:
    """A GitHub Markdown table of the rows (percentages, 2 decimals; 1 with a 95 % interval) with
    a one-line legend, a line saying so when the figures were re-scored with the `rescored`
    parser, and the `notes`."""
    shown = columns()
    lines = [
        "| " + " | ".join(shown) + " |",
        "| " + " | ".join("---" if c in ("Run", "Condition", "Parser") else "---:" for c in shown) + " |",
    ]
    for row in table:
        lines.append("| " + " | ".join(_cell(c, row.get(c), row.get(f"{c} lo"), row.get(f"{c} hi")) for c in shown)
                     + " |")
    note = ""
    if rescored is not None:
        note = (f"Re-scored with the {rescored} parser (--parser {rescored}) from each point's saved answers "
                f"(predictions/epoch=NN.jsonl), not the figures logged during training.\n")
    below = "".join(line + "\n" for line in notes(table))
    return "\n".join(lines) + "\n\n" + LEGEND + "\n" + note + below


def csv_columns(table: Sequence[Row]) -> list[str]:
    """COLUMNS, then `<column> lo` / `<column> hi` for every value column when the table has intervals."""
    if not any(row.get("_bootstrap") for row in table):
        return list(columns())
    return list(columns()) + [f"{c} {end}" for c in value_columns() for end in ("lo", "hi")]


def to_csv(table: Sequence[Row], path: str | Path) -> None:
    """Write the rows as CSV with raw fractions; missing values are empty cells."""
    path = Path(path)
    columns = csv_columns(table)
    try:
        with atomic_open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            for row in table:
                writer.writerow({c: "" if row.get(c) is None else row[c] for c in columns})
    except OSError as err:
        raise InterleaveError(f"{path}: cannot write ({err.strerror or err})") from None


def curve_series(run_dirs: Sequence[str | Path], parser: str | None = None) -> dict[str, list[Row]]:
    """Every evaluated point of every run, as `report_figure.curves_figure` takes them: one series
    per run, or per run and condition (text control included) where a run has several."""
    _check_parser(parser)
    series: dict[str, list[Row]] = {}
    for run, label in _runs(run_dirs):
        by_condition: dict[str, list[Row]] = {}
        for point, file in epoch_points(run).items():
            metrics = read_metrics(file)
            if parser is not None:
                metrics = rescore(file, metrics, parser)
            table = run_rows(label, point, metrics)
            for row in table:
                by_condition.setdefault(row["Condition"], []).append(row)
            text = {"Epoch": point, **{column.removeprefix("Text "): table[0][column] for column in text_columns()
                                       if column.endswith(" F1")}}
            if any(value is not None for key, value in text.items() if key != "Epoch"):
                by_condition.setdefault(TEXT_LAYOUT, []).append(text)
        for condition, points in by_condition.items():
            series[label if len(by_condition) == 1 else f"{label} ({condition})"] = points
    return series


def compare(run_a: str | Path, run_b: str | Path, epoch: int | None = None, parser: str | None = None,
            resamples: int = 1000, seed: int = 0) -> tuple[str, dict[str, dict[str, tuple[float, float]]]]:
    """Markdown: every metric of two runs on the same SHARD and their paired difference B - A,
    with its 95 % interval (`bootstrap.paired_differences`: the same words and clips for both);
    and each run's own intervals from the same resamples (run label -> `add_intervals`' tags)."""
    from interleave.tools.bootstrap import differences_markdown, paired_differences

    _check_parser(parser)
    loaded = []
    for run_dir in (Path(run_a), Path(run_b)):
        found = find_runs(run_dir)
        if len(found) != 1:
            raise InterleaveError(f"{run_dir}: --compare takes one run each, found {len(found)} below it")
        point, file = _select_point(found[0], epoch)
        answers = answers_path(file)
        if not answers.is_file():
            raise InterleaveError(f"{answers}: not found; --compare resamples the saved answers, which it needs")
        by_condition = answer_rows(answers, parser)
        loaded.append((_run_label(found[0], run_dir), point, by_condition,
                       condition_prefixes(read_metrics(file), by_condition)))
    (name_a, point_a, a, prefixes_a), (name_b, point_b, b, prefixes_b) = loaded
    each: dict[str, Any] = {}
    diffs = paired_differences(a, b, {c: c for c in {**a, **b}}, resamples, seed, each)
    names = {metric_tag("", *tm).lstrip("/"): column for column, tm in condition_columns().items()}
    title = f"A = {name_a}, epoch {point_a:02d}; B = {name_b}, epoch {point_b:02d}"
    own = {name: {f"{prefixes[tag.partition('/')[0]]}/{tag.partition('/')[2]}": bounds
                  for tag, bounds in each.get(key, {}).items()}
           for key, name, prefixes in (("a", name_a, prefixes_a), ("b", name_b, prefixes_b))}
    return differences_markdown(diffs, title, names, resamples, seed), own


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the report and write `report.md` and `report.csv` into --out."""
    parser = argparse.ArgumentParser(prog="interleave report", description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="*", type=Path, metavar="RUN_DIR", help="run (version) folder or a folder of runs")
    parser.add_argument("--epoch", type=int, default=None, help="epoch point to report (default: the latest of each run)")
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for report.md and report.csv (default: .)")
    parser.add_argument("--parser", default=None, metavar="RULES",
                        help="re-score the saved answers with these parse_answer rules (paper or extended) "
                             "instead of reading the logged figures")
    parser.add_argument("--plot", action="store_true",
                        help="also write curves.png: every epoch point of every run, one line per run and condition")
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                        help="resamples for the 95%% intervals, from the saved answers (default: 1000; 0: none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the resampling (default: 0)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("RUN_A", "RUN_B"), default=None,
                        help="report two runs on the same SHARD and the paired difference B - A of every metric")
    args = parser.parse_args(argv)
    if bool(args.run_dirs) == bool(args.compare):
        parser.error("give RUN_DIRs or --compare RUN_A RUN_B (one of the two)")
    if args.bootstrap < 0:
        parser.error("--bootstrap must be 0 or more")
    return report_errors(lambda: report(args))


def report(args: argparse.Namespace) -> None:
    """Build what `main`'s arguments ask for, print it and write its files."""
    run_dirs = args.compare or args.run_dirs
    table = rows(run_dirs, args.epoch, args.parser, 0 if args.compare else args.bootstrap, args.seed)
    compared = ""
    if args.compare:  # each run's intervals come from the paired resamples: one bootstrap per run
        compared, own = compare(*args.compare, args.epoch, args.parser, args.bootstrap, args.seed)
        for run, found in own.items():
            add_intervals([row for row in table if row["Run"] == run], found, args.bootstrap, args.seed)
    markdown = to_markdown(table, rescored=args.parser) + ("\n" + compared if compared else "") + reliance_section(_runs(run_dirs), _select_point, args)
    md_path, csv_path = args.out / "report.md", args.out / "report.csv"
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(md_path, markdown)
    except OSError as err:
        raise InterleaveError(f"{err.filename or args.out}: cannot write ({err.strerror or err})") from None
    to_csv(table, csv_path)
    written = [md_path, csv_path]
    if args.plot:
        from interleave.tools.report_figure import FILE, curves_figure, save_figure

        written.append(save_figure(curves_figure(curve_series(run_dirs, args.parser)), args.out / FILE))
    print(markdown, end="")
    print(f"wrote {', '.join(map(str, written))}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
