"""A point's saved answers (`predictions/epoch=NN.jsonl`, written by the evaluation callback):
read row by row through `interleave.eval.predictions.Prediction` (which checks each), then grouped
by condition with their yes/no (or label-named) values, either as saved or parsed again with other
`interleave.eval.answers.parse_answer` rules. `interleave report` re-scores them (`--parser`) and
resamples them (`--bootstrap`, `--compare`); `interleave frontier` reads each α's.

A predictions file is only trusted whole: its metrics file (`epoch=NN.metrics.json`, beside it)
states how many rows the evaluation wrote (`prediction_rows`), and a file holding another number
(cut at a line boundary by an interrupted copy, or rows added) is refused, naming it and both
counts (`check_rows`). A point written before the count was recorded is read with a one-line
warning, once per file.

A point's multiple-choice benchmark rows (`epoch=NN.bench.jsonl`, `callbacks.benchmarks`) are read
as plain rows (`bench_rows`): the report, the frontier and the study read them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from interleave.errors import InterleaveError
from interleave.eval.predictions import ROW_COUNT, Prediction, count_rows

_warned: set[Path] = set()  # the files already warned about, in this process


def _read_text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InterleaveError(f"{file}: cannot read the saved answers ({err})") from None


def read_predictions(file: str | Path) -> list[Prediction]:
    """Read and check the rows of one predictions file (the evaluation's `epoch=NN.jsonl`): each
    row (`Prediction.from_json`), then their number against the metrics file beside it."""
    file = Path(file)
    lines = _read_text(file).split("\n")  # not splitlines(): answers may hold U+2028
    rows = [Prediction.from_json(line, f"{file}:{number}") for number, line in enumerate(lines, 1) if line.strip()]
    metrics_file = metrics_path(file)
    if not metrics_file.is_file():
        _warn(
            file,
            f"no metrics file beside it ({metrics_file.name}) to say how many rows it should hold; "
            "read without that check",
        )
        return rows
    try:
        metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InterleaveError(f"{metrics_file}: not a readable metrics JSON file ({err})") from None
    check_rows(file, len(rows), metrics if isinstance(metrics, dict) else {}, metrics_file)
    return rows


def check_rows(answers_file: Path, found: int, metrics: Mapping[str, Any], metrics_file: Path) -> None:
    """Refuse a predictions file whose number of rows (`found`) is not the one its metrics file
    states; warn (once per file) when the metrics file predates the count."""
    expected = metrics.get(ROW_COUNT)
    if expected is None:
        _warn(
            answers_file,
            f"its metrics file ({metrics_file.name}) does not say how many rows it holds "
            f"(no {ROW_COUNT}: written before the count was recorded); read without that check",
        )
    elif isinstance(expected, bool) or not isinstance(expected, int) or expected < 0:
        raise InterleaveError(f"{metrics_file}: {ROW_COUNT} should be a count of rows, got {expected!r}")
    elif found != expected:
        raise InterleaveError(
            f"{answers_file}: holds {found} answer rows, but its metrics file ({metrics_file.name}) says the "
            f"evaluation wrote {expected}: the file was cut (an interrupted copy or a killed write) or changed "
            f"since; copy it again or evaluate the point again"
        )


def check_saved_rows(metrics_file: str | Path, metrics: Mapping[str, Any]) -> None:
    """A point's check without reading its rows: the saved answers beside `metrics_file` (if any)
    hold the number of rows `metrics` states (`check_rows`)."""
    answers = answers_path(metrics_file)
    if answers.is_file():
        check_rows(answers, count_rows(_read_text(answers)), metrics, Path(metrics_file))


def _warn(file: Path, message: str) -> None:
    if file.resolve() not in _warned:
        _warned.add(file.resolve())
        print(f"warning: {file}: {message}", file=sys.stderr)


def answers_path(metrics_file: str | Path) -> Path:
    """The saved answers (`epoch=NN.jsonl`) beside a point's metrics file."""
    metrics_file = Path(metrics_file)
    return metrics_file.with_name(metrics_file.name.removesuffix(".metrics.json") + ".jsonl")


def metrics_path(answers_file: str | Path) -> Path:
    """A point's metrics file (`epoch=NN.metrics.json`) beside its saved answers."""
    answers_file = Path(answers_file)
    return answers_file.with_name(answers_file.name.removesuffix(".jsonl") + ".metrics.json")


def answer_rows(file: str | Path, parser: str | None = None) -> dict[str, list[Prediction]]:
    """A point's saved answers by condition: parsed again with `parser`'s rules, or with their
    saved `parsed` values (checked) when `parser` is None.

    Answers the evaluation stopped at their verdict (`cut`, the default) keep the verdict of the
    parser that cut them (`cut_parser`) and only that one: another parser may need the rest of the
    text, so re-parsing them with it is refused (the evaluation's `full_answers=true` keeps it all)."""
    from interleave.eval.answers import parse_answer
    from interleave.eval.tasks import LABEL, TASKS
    from interleave.labels import contains_label

    by_condition: dict[str, list[Prediction]] = {}
    for number, row in enumerate(read_predictions(file), 1):
        if parser is not None and TASKS[row.task].scoring == LABEL:
            row = replace(row, parsed=[contains_label(a, row.label) for a in row.answers])
        elif parser is not None:
            if any(row.cut or []) and row.cut_parser != parser:
                raise InterleaveError(
                    f"{file}: answer row {number} ({row.id}): {sum(row.cut or [])} answer(s) stopped at their "
                    f"verdict under the {row.cut_parser} parser, and the {parser} parser may need the rest of the text; "
                    f"re-score with --parser {row.cut_parser}, or evaluate again with ShardEvaluation's "
                    f"full_answers: true to keep whole answers"
                )
            row = replace(row, parsed=[parse_answer(a, rules=parser) for a in row.answers])
        elif (problem := row.parsed_problem()) is not None:
            raise InterleaveError(f"{file}: answer row {number} ({row.id}): {problem}")
        by_condition.setdefault(row.condition, []).append(row)
    return by_condition


def bench_rows(metrics_file: str | Path) -> list[dict[str, Any]]:
    """A point's benchmark rows (`epoch=NN.bench.jsonl` beside its metrics file), [] when it has none;
    refused by name when they are not the number its metrics file counts (`bench_rows`)."""
    metrics_file = Path(metrics_file)
    path = metrics_file.with_name(metrics_file.name.replace(".metrics.json", ".bench.jsonl"))
    try:
        counted = json.loads(_read_text(metrics_file)).get("bench_rows")
    except (InterleaveError, ValueError, AttributeError):
        counted = None
    if not path.is_file():
        if isinstance(counted, int) and counted > 0:
            raise InterleaveError(f"{path}: missing, but {metrics_file.name} counts {counted} benchmark rows")
        return []
    try:
        rows = [json.loads(line) for line in _read_text(path).splitlines() if line.strip()]
    except ValueError as err:
        raise InterleaveError(f"{path}: not a readable benchmark rows file ({err})") from None
    if isinstance(counted, int) and counted != len(rows):
        raise InterleaveError(f"{path}: holds {len(rows)} benchmark rows, but {metrics_file.name} counts {counted}")
    return rows
