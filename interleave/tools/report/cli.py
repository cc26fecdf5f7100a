"""Table-2-style results report from the evaluation metrics of one or more runs.

`interleave report RUN_DIR... [--epoch N] [--out DIR] [--parser paper|extended]` reads
`predictions/epoch=NN.metrics.json` (written by the evaluation callback; 00 = before training)
of each run and prints one row per run and prompt layout, in the column order of the paper's
Table 2, plus the unparsed-answer shares and the text-only control. It writes the same table as
`DIR/report.md` (percentages) and `DIR/report.csv` (raw fractions, for pandas).

The Parser column names the answer parser (`interleave.eval.answers.parse_answer`'s rules) the figures
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
every run (`interleave.tools.report.figure`).

For every run with an epoch-00 point and a later reported one, a forgetting summary follows the
table (`interleave.tools.report.forgetting`): each yes/no task's F1 gain and identity's accuracy
retention since epoch 00, with paired intervals; also written as `DIR/forgetting.csv`.

`--study runs/<study>` reports a study's folder instead (`interleave study`'s output,
`<condition>/seed=<s>/`): one row per condition, the mean over its seeds with a hierarchical
bootstrap interval (seeds, then words, then clips), `--per-seed` for each seed's own rows, the
forgetting summary per condition, `--plot` with a band over seeds
(`interleave.tools.report.study`).

The table itself is built and written by `interleave.tools.report.table`, the runs and their
points read by `interleave.tools.report.runs`.

Runs are only put side by side when they were evaluated on the same SHARD file: the metrics
files' `shard_hash` (`interleave.provenance`) must agree, or the report stops. Other
differences (code version, tokenization rule, parser) are flagged under the table; a file
written before these were recorded shows them as unknown.

A RUN_DIR is either a run (a logger version folder holding `predictions/`) or a parent folder,
in which case every run below it is reported; below it, a frontier's output (`alpha=A/` folders)
and a folder with no evaluated point are no runs: each is named under the table and skipped.

Nothing is read unchecked: every metrics file's values, and its saved answers against the rows
it counts (`prediction_rows`): a predictions file cut at a line boundary (an interrupted copy, a
process killed between writes) stops the report with one line naming it and both counts; a
point written before the count was recorded is read with a one-line warning
(`interleave.tools.saved_answers`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interleave.errors import InterleaveError, report_errors
from interleave.eval.tasks import metric_tag
from interleave.files import write_text_atomic
from interleave.tools.report import benchmarks, forgetting, retention
from interleave.tools.report.benchmarks import benchmark_section
from interleave.tools.report.reliance import reliance_section
from interleave.tools.report.runs import (
    check_parser,
    condition_prefixes,
    find_runs,
    labelled_runs,
    read_metrics,
    run_label,
    select_point,
    skipped_folders,
)
from interleave.tools.report.table import (
    Row,
    add_intervals,
    columns,
    condition_columns,
    rows,
    run_series,
    to_csv,
    to_markdown,
    write_csv,
)
from interleave.tools.saved_answers import answer_rows, answers_path

COLUMNS = columns()  # the paper's: what a run of the registry as shipped reports


def curve_series(run_dirs: Sequence[str | Path], parser: str | None = None) -> dict[str, list[Row]]:
    """Every evaluated point of every run, as `figure.curves_figure` takes them: one series
    per run, or per run and condition (text control included) where a run has several."""
    check_parser(parser)
    series: dict[str, list[Row]] = {}
    for run, label in labelled_runs(run_dirs):
        by_condition = run_series(run, label, parser)
        for condition, points in by_condition.items():
            series[label if len(by_condition) == 1 else f"{label} ({condition})"] = points
    return series


def compare(
    run_a: str | Path,
    run_b: str | Path,
    epoch: int | None = None,
    parser: str | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[str, dict[str, dict[str, tuple[float, float]]]]:
    """Markdown: every metric of two runs on the same SHARD and their paired difference B - A,
    with its 95 % interval (`bootstrap.paired_differences`: the same words and clips for both);
    and each run's own intervals from the same resamples (run label -> `add_intervals`' tags)."""
    from interleave.tools.bootstrap import differences_markdown, paired_differences

    check_parser(parser)
    loaded = []
    for run_dir in (Path(run_a), Path(run_b)):
        found = find_runs(run_dir)
        if len(found) != 1:
            raise InterleaveError(f"{run_dir}: --compare takes one run each, found {len(found)} below it")
        point, file = select_point(found[0], epoch)
        answers = answers_path(file)
        if not answers.is_file():
            raise InterleaveError(f"{answers}: not found; --compare resamples the saved answers, which it needs")
        by_condition = answer_rows(answers, parser)
        loaded.append(
            (run_label(found[0], run_dir), point, by_condition, condition_prefixes(read_metrics(file), by_condition))
        )
    (name_a, point_a, a, prefixes_a), (name_b, point_b, b, prefixes_b) = loaded
    each: dict[str, Any] = {}
    diffs = paired_differences(a, b, {c: c for c in {**a, **b}}, resamples, seed, each)
    names = {metric_tag("", *tm).lstrip("/"): column for column, tm in condition_columns().items()}
    title = f"A = {name_a}, epoch {point_a:02d}; B = {name_b}, epoch {point_b:02d}"
    own = {
        name: {
            f"{prefixes[tag.partition('/')[0]]}/{tag.partition('/')[2]}": bounds
            for tag, bounds in each.get(key, {}).items()
        }
        for key, name, prefixes in (("a", name_a, prefixes_a), ("b", name_b, prefixes_b))
    }
    return differences_markdown(diffs, title, names, resamples, seed), own


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the report and write `report.md` and `report.csv` into --out."""
    parser = argparse.ArgumentParser(prog="interleave report", description=__doc__.splitlines()[0])
    parser.add_argument(
        "run_dirs", nargs="*", type=Path, metavar="RUN_DIR", help="run (version) folder or a folder of runs"
    )
    parser.add_argument(
        "--epoch", type=int, default=None, help="epoch point to report (default: the latest of each run)"
    )
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for report.md and report.csv (default: .)")
    parser.add_argument(
        "--parser",
        default=None,
        metavar="RULES",
        help="re-score the saved answers with these parse_answer rules (paper or extended) "
        "instead of reading the logged figures",
    )
    parser.add_argument(
        "--plot",
        action="store_true",
        help="also write curves.png: every epoch point of every run, one line per run and condition",
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        metavar="N",
        help="resamples for the 95%% intervals, from the saved answers (default: 1000; 0: none)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the resampling (default: 0)")
    parser.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("RUN_A", "RUN_B"),
        default=None,
        help="report two runs on the same SHARD and the paired difference B - A of every metric",
    )
    parser.add_argument(
        "--study",
        type=Path,
        default=None,
        metavar="STUDY_DIR",
        help="a study's folder (runs/<study>): one row per condition, the mean over its seeds",
    )
    parser.add_argument("--per-seed", action="store_true", help="with --study: also each seed's own rows")
    args = parser.parse_args(argv)
    if sum((bool(args.run_dirs), bool(args.compare), args.study is not None)) != 1:
        parser.error("give RUN_DIRs, --compare RUN_A RUN_B or --study STUDY_DIR (one of the three)")
    if args.per_seed and args.study is None:
        parser.error("--per-seed goes with --study")
    if args.bootstrap < 0:
        parser.error("--bootstrap must be 0 or more")
    return report_errors(lambda: report(args))


def report(args: argparse.Namespace) -> None:
    """Build what `main`'s arguments ask for, print it and write its files; the table, the
    forgetting summary and the seeds' rows score each resample of the same answers once."""
    from interleave.tools.bootstrap import shared_resamples

    with shared_resamples():
        written = study(args) if args.study is not None else runs(args)
    print(f"wrote {', '.join(map(str, written))}", file=sys.stderr)


def _write(out: Path, markdown: str) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "report.md", markdown)
    except OSError as err:
        raise InterleaveError(f"{err.filename or out}: cannot write ({err.strerror or err})") from None
    return out / "report.md"


def study(args: argparse.Namespace) -> list[Path]:
    """`--study`: the study's table over seeds, its forgetting summary; `report.md`, `report.csv`,
    `forgetting.csv` (with `--per-seed`, `report_seeds.csv` and `forgetting_seeds.csv` too)."""
    from interleave.tools.report import study as report_study

    check_parser(args.parser)
    found = report_study.study_report(args.study, args.epoch, args.parser, args.bootstrap, args.seed, args.per_seed)
    markdown = report_study.to_markdown(found, args.study, args.bootstrap, args.seed, args.parser)
    kept, kept_notes = study_retention(args)
    markdown += (
        "\n" + retention.to_markdown(kept, kept_notes, args.bootstrap, args.seed, "Study condition")
        if kept or kept_notes
        else ""
    )
    written = [_write(args.out, markdown)]
    if kept:
        written.append(retention.write(kept, args.out / retention.FILE, "Study condition"))
    to_csv(found.table, args.out / "report.csv", report_study.LABELS)
    written.append(args.out / "report.csv")
    if found.seed_table:
        to_csv(found.seed_table, args.out / "report_seeds.csv", report_study.SEED_LABELS)
        written.append(args.out / "report_seeds.csv")
    if found.forgetting:
        written.append(forgetting.write(found.forgetting, args.out / forgetting.FILE, "Study condition"))
    if found.seed_forgetting:
        written.append(forgetting.write(found.seed_forgetting, args.out / "forgetting_seeds.csv"))
    if found.benchmarks:
        write_csv(args.out / benchmarks.STUDY_FILE, benchmarks.STUDY_HEADER, found.benchmarks)
        written.append(args.out / benchmarks.STUDY_FILE)
    if args.plot:
        from interleave.tools.report.figure import FILE, curves_figure, save_figure

        series = report_study.study_series(args.study, args.epoch, args.parser)
        written.append(save_figure(curves_figure(series, report_study.BAND), args.out / FILE))
    print(markdown, end="")
    return written


def study_retention(args: argparse.Namespace) -> tuple[list[retention.TextRetention], list[str]]:
    """`--study`'s language retention: per condition and text, the mean over its seeds at the
    condition's epoch (`interleave.tools.report.retention.seed_retention`)."""
    from interleave.tools.report import study as report_study

    found: list[retention.TextRetention] = []
    notes: list[str] = []
    for condition in report_study.study_conditions(args.study):
        if not condition.seeds:
            continue
        point, _ = report_study.common_epoch(condition, args.epoch)
        loaded = [
            forgetting.load_points(run, condition.label(s), point, args.parser) for s, run in condition.seeds.items()
        ]
        if any(isinstance(p, str) for p in loaded):
            continue  # the forgetting summary names why
        try:
            found += retention.seed_retention(condition.name, loaded, args.bootstrap, args.seed)
        except InterleaveError as err:
            notes.append(f"{condition.name}: no retention figures: {err}")
    return found, notes


def runs(args: argparse.Namespace) -> list[Path]:
    """RUN_DIRs or `--compare`: the table, the paired differences, the forgetting summary;
    `report.md`, `report.csv`, `forgetting.csv`, `curves.png` with `--plot`."""
    run_dirs = args.compare or args.run_dirs
    table = rows(run_dirs, args.epoch, args.parser, 0 if args.compare else args.bootstrap, args.seed)
    compared = ""
    if args.compare:  # each run's intervals come from the paired resamples: one bootstrap per run
        compared, own = compare(*args.compare, args.epoch, args.parser, args.bootstrap, args.seed)
        for run, found in own.items():
            add_intervals([row for row in table if row["Run"] == run], found, args.bootstrap, args.seed)
    summaries, forgotten = forgetting.summaries(
        labelled_runs(run_dirs), args.epoch, args.parser, args.bootstrap, args.seed
    )
    markdown = to_markdown(table, rescored=args.parser) + "".join(line + "\n" for line in skipped_folders(run_dirs))
    markdown += "\n" + compared if compared else ""
    markdown += reliance_section(labelled_runs(run_dirs), select_point, args)
    markdown += benchmark_section(labelled_runs(run_dirs), select_point, args)
    markdown += "\n" + forgetting.to_markdown(summaries, forgotten, args.bootstrap, args.seed) if summaries else ""
    bench_forgetting, gains = benchmarks.forgetting_section(labelled_runs(run_dirs), select_point, args)
    markdown += bench_forgetting
    kept, kept_notes = retention.summaries(labelled_runs(run_dirs), args.epoch, args.parser, args.bootstrap, args.seed)
    markdown += "\n" + retention.to_markdown(kept, kept_notes, args.bootstrap, args.seed) if kept or kept_notes else ""
    written = [_write(args.out, markdown), args.out / "report.csv"]
    to_csv(table, written[1])
    if summaries:
        written.append(forgetting.write(summaries, args.out / forgetting.FILE))
    if gains:
        written.append(benchmarks.write_forgetting(gains, args.out / benchmarks.FORGETTING_FILE))
    if kept:
        written.append(retention.write(kept, args.out / retention.FILE))
    if args.plot:
        from interleave.tools.report.figure import FILE, curves_figure, save_figure

        written.append(save_figure(curves_figure(curve_series(run_dirs, args.parser)), args.out / FILE))
    print(markdown, end="")
    return written


if __name__ == "__main__":
    sys.exit(main())
