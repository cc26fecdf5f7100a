"""A point's saved answers (`predictions/epoch=NN.jsonl`, written by the evaluation callback):
read and checked row by row, then grouped by condition with their yes/no (or label-named) values,
either as saved or parsed again with other `interleave.shard.parse_answer` rules. `interleave
report` re-scores them (`--parser`) and resamples them (`--bootstrap`, `--compare`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from interleave.errors import InterleaveError


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
        cut = row.get("cut")
        if cut is not None and (not isinstance(cut, list) or len(cut) != len(answers)
                                or not all(isinstance(c, bool) for c in cut) or not isinstance(row.get("cut_parser"), str)):
            raise InterleaveError(f"{where}: 'cut' should hold one true/false per answer, with the 'cut_parser' that cut them")
        out.append(row)
    return out


def answers_path(metrics_file: str | Path) -> Path:
    """The saved answers (`epoch=NN.jsonl`) beside a point's metrics file."""
    metrics_file = Path(metrics_file)
    return metrics_file.with_name(metrics_file.name.removesuffix(".metrics.json") + ".jsonl")


def answer_rows(file: str | Path, parser: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """A point's saved answers by condition: parsed again with `parser`'s rules, or with their
    saved `parsed` values (checked) when `parser` is None.

    Answers the evaluation stopped at their verdict (`cut`, the default) keep the verdict of the
    parser that cut them (`cut_parser`) and only that one: another parser may need the rest of the
    text, so re-parsing them with it is refused (the evaluation's `full_answers=true` keeps it all)."""
    from interleave.labels import contains_label
    from interleave.shard import ANSWERS, parse_answer

    by_condition: dict[str, list[dict[str, Any]]] = {}
    for number, row in enumerate(read_predictions(file), 1):
        if parser is not None and row["task"] == "identity":
            parsed = [contains_label(a, row["label"]) for a in row["answers"]]
        elif parser is not None:
            if any(row.get("cut") or []) and row["cut_parser"] != parser:
                raise InterleaveError(
                    f"{file}: answer row {number} ({row.get('id')}): {sum(row['cut'])} answer(s) stopped at their "
                    f"verdict under the {row['cut_parser']} parser, and the {parser} parser may need the rest of the text; "
                    f"re-score with --parser {row['cut_parser']}, or evaluate again with ShardEvaluation's "
                    f"full_answers: true to keep whole answers")
            parsed = [parse_answer(a, rules=parser) for a in row["answers"]]
        else:
            parsed = row.get("parsed")
            valid = (lambda p: isinstance(p, bool)) if row["task"] == "identity" else (lambda p: p is None or p in ANSWERS)
            if not isinstance(parsed, list) or len(parsed) != len(row["answers"]) or not all(map(valid, parsed)):
                raise InterleaveError(f"{file}: answer row {number} ({row.get('id')}): 'parsed' should hold one "
                                      f"{'true/false' if row['task'] == 'identity' else 'yes/no/null'} per answer")
        by_condition.setdefault(row["condition"], []).append({**row, "parsed": parsed})
    return by_condition
