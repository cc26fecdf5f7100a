"""A point's saved answers (`predictions/epoch=NN.jsonl`, written by the evaluation callback):
read row by row through `interleave.shard.predictions.Prediction` (which checks each), then grouped
by condition with their yes/no (or label-named) values, either as saved or parsed again with other
`interleave.shard.parse_answer` rules. `interleave report` re-scores them (`--parser`) and
resamples them (`--bootstrap`, `--compare`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from interleave.errors import InterleaveError
from interleave.shard.predictions import Prediction


def read_predictions(file: str | Path) -> list[Prediction]:
    """Read and check the rows of one predictions file (the evaluation's `epoch=NN.jsonl`)."""
    file = Path(file)
    try:
        lines = file.read_text(encoding="utf-8").split("\n")  # not splitlines(): answers may hold U+2028
    except (OSError, UnicodeDecodeError) as err:
        raise InterleaveError(f"{file}: cannot read the saved answers ({err})") from None
    return [Prediction.from_json(line, f"{file}:{number}") for number, line in enumerate(lines, 1) if line.strip()]


def answers_path(metrics_file: str | Path) -> Path:
    """The saved answers (`epoch=NN.jsonl`) beside a point's metrics file."""
    metrics_file = Path(metrics_file)
    return metrics_file.with_name(metrics_file.name.removesuffix(".metrics.json") + ".jsonl")


def answer_rows(file: str | Path, parser: str | None = None) -> dict[str, list[Prediction]]:
    """A point's saved answers by condition: parsed again with `parser`'s rules, or with their
    saved `parsed` values (checked) when `parser` is None.

    Answers the evaluation stopped at their verdict (`cut`, the default) keep the verdict of the
    parser that cut them (`cut_parser`) and only that one: another parser may need the rest of the
    text, so re-parsing them with it is refused (the evaluation's `full_answers=true` keeps it all)."""
    from interleave.labels import contains_label
    from interleave.shard import parse_answer
    from interleave.shard.tasks import LABEL, TASKS

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
                    f"full_answers: true to keep whole answers")
            row = replace(row, parsed=[parse_answer(a, rules=parser) for a in row.answers])
        elif (problem := row.parsed_problem()) is not None:
            raise InterleaveError(f"{file}: answer row {number} ({row.id}): {problem}")
        by_condition.setdefault(row.condition, []).append(row)
    return by_condition
