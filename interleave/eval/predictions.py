"""A prediction row: one query answered under one condition, as the evaluation makes it and as
`predictions/epoch=NN.jsonl` holds it (one JSON object a line).

    {"id": "synonym/siren/0/alarm", "task": "synonym", "condition": "interleaved", "label": "Siren",
     "candidate": "alarm", "truth": "yes", "prompt": "Is [AUDIO] similar to alarm?",
     "answers": ["Yes", "No, ..."], "parsed": ["yes", "no"]}

plus `cut` (one flag per answer) and `cut_parser` when an answer stopped at its verdict, and
`p_yes` when the evaluation scored the yes/no queries. `to_json` writes exactly these keys in this
order (optional ones omitted when absent), so files stay byte-identical to those written before
the row had a type; `from_json` reads one back with every fault named. `index` (the query's place
among its condition's queries) and `clips` (the query's clips) live in memory only.

The point's metrics file (`epoch=NN.metrics.json`) states how many rows the predictions file
holds (`ROW_COUNT`), so that a reader tells a whole file from one cut at a line boundary, and for
a checkpoint evaluated on its own, which (`CKPT_PATH`), so that it is never read as before training.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from interleave.errors import InterleaveError
from interleave.eval.format import ANSWERS
from interleave.eval.tasks import LABEL, TASKS

ROW_COUNT = "prediction_rows"  # the metrics file's key: how many rows its predictions file holds
CKPT_PATH = "ckpt_path"  # the metrics file's key of a checkpoint evaluated on its own (`validate --ckpt_path`)


def count_rows(text: str) -> int:
    """The rows of a predictions file's text: its non-blank lines (split at "\\n" only, as it is
    read: an answer may hold U+2028)."""
    return sum(1 for line in text.split("\n") if line.strip())


@dataclass(frozen=True)
class Prediction:
    """One row of a predictions file; `parsed` holds yes/no/None per answer for a verdict task,
    whether the label was named (true/false) for a label task."""

    id: str
    task: str
    condition: str
    label: str
    candidate: str | None
    truth: str | None
    prompt: str
    answers: list[str]
    parsed: list[Any]
    cut: list[bool] | None = None
    cut_parser: str | None = None
    p_yes: float | None = None
    index: int = field(default=-1, compare=False)  # not written: the order rows gathered from ranks are put back in
    clips: tuple[str, ...] = field(default=(), compare=False)  # not written: the query's clips, in placeholder order

    def to_json(self) -> str:
        """The row's line (without the newline), keys in the file's order."""
        obj: dict[str, Any] = {
            "id": self.id,
            "task": self.task,
            "condition": self.condition,
            "label": self.label,
            "candidate": self.candidate,
            "truth": self.truth,
            "prompt": self.prompt,
            "answers": self.answers,
            "parsed": self.parsed,
        }
        if self.cut is not None:
            obj["cut"], obj["cut_parser"] = self.cut, self.cut_parser
        if self.p_yes is not None:
            obj["p_yes"] = self.p_yes
        return json.dumps(obj, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str, where: str) -> Prediction:
        """One row read and checked; raises InterleaveError naming `where` ("file:line") and the fault."""
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
        label_task = TASKS[row["task"]].scoring == LABEL
        if not label_task and row.get("truth") not in ANSWERS:
            raise InterleaveError(f"{where}: truth {row.get('truth')!r} is none of {', '.join(ANSWERS)}")
        if label_task and not isinstance(row.get("label"), str):
            raise InterleaveError(f"{where}: an {row['task']} row needs its label")
        cut = row.get("cut")
        if cut is not None and (
            not isinstance(cut, list)
            or len(cut) != len(answers)
            or not all(isinstance(c, bool) for c in cut)
            or not isinstance(row.get("cut_parser"), str)
        ):
            raise InterleaveError(
                f"{where}: 'cut' should hold one true/false per answer, with the 'cut_parser' that cut them"
            )
        return cls(
            str(row.get("id")),
            row["task"],
            row["condition"],
            row.get("label"),
            row.get("candidate"),
            row.get("truth"),
            row.get("prompt"),
            answers,
            row.get("parsed"),
            cut,
            row.get("cut_parser"),
            row.get("p_yes"),
        )

    def parsed_problem(self) -> str | None:
        """Why the saved `parsed` values cannot be read as they are (one valid value per answer), or None."""
        label_task = TASKS[self.task].scoring == LABEL
        valid = (lambda p: isinstance(p, bool)) if label_task else (lambda p: p is None or p in ANSWERS)
        if isinstance(self.parsed, list) and len(self.parsed) == len(self.answers) and all(map(valid, self.parsed)):
            return None
        return f"'parsed' should hold one {'true/false' if label_task else 'yes/no/null'} per answer"
